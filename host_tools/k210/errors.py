"""The MaixPy firmware's KPU error codes and the texts it prints (Maix_kpu.c, maixpy-firmware-facts.md)."""

ERR_PARAM = 2001
ERR_KMODEL_VERSION = 2002
ERR_KMODEL_FORMAT = 2003
ERR_DECRYPT = 2004                 # an encrypted model (MaixHub's 'smodel') made for another board
ERR_READ_FILE = 2005
ERR_NO_MEM = 2006
ERR_RUN_MODEL = 2008
ERR_MODELS_FULL = 2009
ERR_OUTPUTS_SET = 2013
ERR_UNKNOWN = 2015

VERSION_TEXT_V3_V4 = "ERR_KMODEL_VERSION: only support kmodel V3/V4 now"    # builds with V4 support
VERSION_TEXT_V3 = "ERR_KMODEL_VERSION: only support kmodel V3"              # builds without

TEXT = {
    ERR_PARAM: "ERR_PARAM: please check param, load address or kmodel file name",
    ERR_KMODEL_VERSION: VERSION_TEXT_V3_V4,
    ERR_KMODEL_FORMAT: "ERR_KMODEL_FORMAT: layer_header.body_size <=0",
    ERR_DECRYPT: "ERR_DECRYPT: check smodel match with your board",
    ERR_READ_FILE: "ERR_READ_FILE: read file failed",
    ERR_NO_MEM: "ERR_NO_MEM: memory not enough",
    ERR_RUN_MODEL: "ERR_RUN_MODEL: maybe model dirty",
    ERR_MODELS_FULL: "ERR_MODELS_FULL: we only support load 5 models in the same time",
    ERR_OUTPUTS_SET: "ERR_OUTPUTS_SET: need kpu.set_outputs() to set shape",
    ERR_UNKNOWN: "ERR_UNKNOWN",
}


def text(code: int) -> str:
    """What the firmware prints for a code (ERR_UNKNOWN's text for a code it has no text for)."""
    return TEXT.get(code, TEXT[ERR_UNKNOWN])


def load_error(code: int, what: str = "load", detail: str = None) -> str:
    """The ValueError text of a failed kpu.load / load_flash: "[MAIXPY]kpu: load error:2006, ERR_NO_MEM: ..."."""
    return "[MAIXPY]kpu: %s error:%d, %s" % (what, code, detail or text(code))
