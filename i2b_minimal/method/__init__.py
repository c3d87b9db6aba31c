"""The paper's method (arXiv 2509.00787), readable in one sitting, in this order:

1. ``clip.py``: the frozen CLIP image encoder, pictures -> tokens (``pretrained.py``: where its weights come from);
2. ``attention.py``: cross-attention, signal queries over image tokens;
3. ``unet.py``: the 1D U-Net denoiser and its four conditioning modes;
4. ``diffusion.py``: the noise schedule, the training loss, DDPM and DDIM, classifier-free guidance;
5. ``loop.py``: Algorithm 1 of Ho et al. 2020, a plain training step and loop.

``hardware.py`` picks CUDA, MPS or CPU. Nothing here imports from the rest of the package.
"""
