"""The one error type of the kmodel package, carrying the firmware's error code."""

# The MaixPy firmware's codes and texts for what `kpu.load` reports (maixpy-firmware-facts.md).
ERR_KMODEL_VERSION = 2002
ERR_KMODEL_FORMAT = 2003
ERR_NO_MEM = 2006
ERR_RUN_MODEL = 2008
ERR_UNKNOWN = 2015

FIRMWARE_TEXT = {
    ERR_KMODEL_VERSION: "ERR_KMODEL_VERSION: only support kmodel V3/V4 now",
    ERR_KMODEL_FORMAT: "ERR_KMODEL_FORMAT: layer_header.body_size <=0",
    ERR_NO_MEM: "ERR_NO_MEM: memory not enough",
    ERR_RUN_MODEL: "ERR_RUN_MODEL: maybe model dirty",
    ERR_UNKNOWN: "ERR_UNKNOWN",
}


class KmodelError(ValueError):
    """A kmodel that cannot be read or run. str() names the file, the layer and the field.

    .code is the firmware's error code (2002 version, 2003 malformed, 2006 too big, 2015 unknown e.g. V5),
    .layer the layer index or None, .field the field name or None, .version the file's kmodel version when
    known, .firmware_text what MaixPy prints after `load error:<code>, `.
    """

    def __init__(self, code: int, detail: str, name: str = "<bytes>", layer=None, field=None, version=None,
                 type_name=None):
        self.code = code
        self.layer = layer
        self.field = field
        self.version = version
        self.name = name
        self.detail = detail
        self.firmware_text = FIRMWARE_TEXT.get(code, "ERR_UNKNOWN")
        where = [name]
        if layer is not None:
            where.append("layer %d%s" % (layer, " (%s)" % type_name if type_name else ""))
        if field is not None:
            where.append("field %r" % field)
        super().__init__("%s: %s [error %d]" % (", ".join(where), detail, code))
