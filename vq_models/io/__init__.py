"""Image, sequence, video and colour I/O. Every image file goes through OpenImageIO."""
