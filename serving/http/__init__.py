"""HTTP/1.1 transport of the REST API: the server and the bridge from the batch thread back to the event loop."""
