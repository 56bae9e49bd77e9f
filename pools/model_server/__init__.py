"""tierserve's TF-Serving-compatible model server (`tierserve model-server`).

Modules, one concept each: `config` (ModelServerConfig parsing and checks),
`versions` (pure version policy), `sources` (where versions live: local or s3),
`servable` (one loaded SavedModel), `model` (one model's versions and states),
`manager` (the model list, reloads, polling), `tensors` (JSON <-> arrays),
`examples` (tf.Example inputs of classify/regress), `signatures` (metadata),
`memory` (giving unloaded models' memory back), `rest`, `grpc_service`, `metrics`, `cli`.
TensorFlow is imported only by the modules that serve.
"""
