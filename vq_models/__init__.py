"""vqedit: facial performance editing for VFX compositors.

Stage I turns a StyleGAN2 prior into an unsupervised, vector-quantised segmentation of one shot's face;
Stage II renders frames back from (edited) label maps with a SPADE generator.
"""

__version__ = "0.1.0"
