"""Networks for Stage I: the StyleGAN2 prior, inversion encoders, the latent discriminator and the
perceptual / identity losses.

Modules (import the one you need; nothing heavy happens at package import):

- :mod:`vq_models.nets.stylegan2` — ``Generator`` (rosinality layout), ``small_generator_config``
- :mod:`vq_models.nets.e4e` — IR-SE50 body, ``Encoder4Editing``, ``LatentDiscriminator``
- :mod:`vq_models.nets.light_encoder` — ``LightEncoder`` (CPU presets, same output contract as e4e)
- :mod:`vq_models.nets.checkpoints` — ``load_stylegan2``, ``load_e4e``, weight-file lookup
- :mod:`vq_models.nets.lpips` — ``PerceptualLoss``, ``lpips_distance`` (+ ``backbones``)
- :mod:`vq_models.nets.identity` — ``IdentityLoss`` (ArcFace IR-SE50, off when weights are absent)
"""
