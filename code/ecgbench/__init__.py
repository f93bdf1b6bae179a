"""`make bench`: how fast ecg-sweeps trains, starts, predicts and sweeps, on this machine.

A tool beside the library: it measures ``ecgsweep`` only through its public functions
and the programs in ``code/``. Every comparison is made in one run, on the same data and
model, and reported as a ratio: machines (and neighbours on a shared one) differ too much
for absolute figures to carry. One module per section:

- training: beats/s of ``training.fit`` against the plain ``model.fit`` on NumPy arrays
  (batch 32) that most published MIT-BIH notebooks use; first epoch left out.
- inference: the prediction path of ``code/eval.py`` and its bootstrap.
- backends: ``training.fit`` on each installed Keras backend, one process each, as ratios
  against TensorFlow.
- gpu: only when a GPU is visible: beats/s per backend at batch 64, 256 and 1024 with
  mixed precision off and on, and concurrent runs per GPU until throughput per run halves.
- packing: only when a GPU is visible: a sweep of real runs with ``--runs-per-gpu`` against
  one run per GPU.
- startup: launch of ``code/train.py`` to its first epoch, cold and warm CSV parse cache.
- sweeps: the inter-patient sweep with and without fold-aware early stopping.
- executors: the Ray executor's sweep throughput against the local one.
"""
