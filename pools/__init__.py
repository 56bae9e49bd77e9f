"""Model pools: the model server, the cold pool's cache manager, the model store and clients."""
