"""The cold pool: one shared multi-model caching server in front of a model server.

Modules, one concept each:
- config: PoolConfig (flags and TIERSERVE_POOL_* environment variables)
- cache: pure bookkeeping of the memory and disk tiers, bounds and victims
- flight: single flight per key
- catalog: the store's listings, cached
- sender: the one desired model list and its batching sender (one per model server)
- servers, placement: the pool's model servers and which one loads a model (pure choice)
- modelserver_client / protos: gRPC to a TF-Serving-compatible server
- loader: the miss pipeline (download, room, load) and unload/delete
- admission: pure rules that answer a miss 503 at once when its wait cannot end in time
- pool: requests (version resolution, bounded waits, shedding), admin actions, start/stop
- poller: live reload from the store
- disk: the cache folder (index rebuild, atomic delete, policy state)
- metrics, app (FastAPI), cli (`tierserve pool`), modelserver_proc (own child servers)
"""
