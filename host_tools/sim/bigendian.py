"""Reading a kmodel that kpu.load_flash finds in flash: stored big-endian (MaixPy's model_le2be form).

The conversion itself belongs to the compiler (host_tools.compiler writes <name>_be.kmodel); this module only
finds it and applies its inverse to the flash image, so the two can never disagree.
"""


def from_flash_image(flash, addr: int):
    """The little-endian kmodel bytes of the big-endian model at `addr`, or None when no V3 model is there."""
    try:
        from host_tools.compiler.bigendian import from_big_endian, stored_size
    except ImportError:
        raise NotImplementedError("simulated MaixPy: kpu.load_flash needs host_tools.compiler.bigendian "
                                  "(from_big_endian, stored_size), which is not there yet") from None
    n = stored_size(flash, addr)
    if n is None:
        return None
    return from_big_endian(bytes(flash[addr:addr + n]))
