"""Image operations that join the registry client and the store: pull, push, save/load,
garbage collection. The client and the store never import each other; this package does."""
