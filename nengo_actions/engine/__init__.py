"""Training: the trainer interface and its two implementations (NengoDL's simulator; Keras backpropagation through time), losses, the epoch loop and scale-out."""
