"""Trained networks leaving the toolkit: NIR graphs out and in (:mod:`.nir_export`,
:mod:`.nir_import`) and the Loihi emulator (:mod:`.loihi`).

Importing this package loads neither TensorFlow nor nengo-loihi; its modules do.
"""
