"""Neuron types: parsing their names, and TensorFlow builders for the Nengo types NengoDL lacks."""
