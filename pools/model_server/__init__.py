"""tierserve's TF-Serving-compatible model server (`tierserve model-server`).

Modules, one concept each: `config` (ModelServerConfig parsing and checks),
`versions` (pure version policy), `sources` (where versions live: local or s3),
`servable` (one loaded SavedModel), `model` (one model's versions and states),
`manager` (the model list, reloads, polling), `tensors` (JSON <-> arrays),
`examples` (tf.Example inputs of classify/regress), `signatures` (metadata),
`memory` (giving unloaded models' memory back), `tensor_proto` (typed output fields),
`redact` (errors without paths), `rest`, `grpc_service`, `metrics` and `tfs_metrics` (TF
Serving's series), `monitoring` and `tf_flags` (its config file and flags), `cli`.
TensorFlow is imported only by the modules that serve.
"""
