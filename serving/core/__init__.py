"""Model lifecycle and execution: servables, manager, file-system source, version policy, batching, types, errors."""
