"""The APIs: REST routes and the gRPC services, both over one service facade (TF Serving's `*_impl` split)."""
