"""The one error type of the kmodel package, carrying the firmware's error code."""

from host_tools.k210 import errors as fw


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
        self.firmware_text = fw.text(code)
        where = [name]
        if layer is not None:
            where.append("layer %d%s" % (layer, " (%s)" % type_name if type_name else ""))
        if field is not None:
            where.append("field %r" % field)
        super().__init__("%s: %s [error %d]" % (", ".join(where), detail, code))
