"""What the board holds before a deploy writes anything, read in one round trip when the tool connects.

- the firmware's size, from kflash's header at flash 0 (where models may start);
- the models the board lists: /flash/models.json and /sd/models.json, each flash model with its offset, size and
  sha256 (manifest.flash_source), so a new plan goes around them (layout.plan);
- whether the app was running (main.py had imported it), so a deploy that changes nothing can start it again;
- leftover `*.part` files of an interrupted copy are removed then and there ("cleaned on the next connection").
"""
import ast
import json
from dataclasses import dataclass, field

from host_tools.deploy.link import DeviceError, Link
from host_tools.k210.flash import SPIFFS_OFFSET

PART = ".part"
LISTINGS = ("/flash", "/sd")

# Board code: remove the *.part files in the folders _ds; their paths in _gone.
SWEEP = """
_gone=[]
for _d in _ds:
 try:
  _ns=_os.listdir(_d)
 except OSError:
  continue
 for _n in _ns:
  if _n.endswith(%r):
   try:
    _os.remove(_d+'/'+_n)
    _gone.append(_d+'/'+_n)
   except OSError:
    pass
""" % PART

SNIPPET = "import uos as _os, sys as _sys\n_ds=%r\n" % (LISTINGS,) + SWEEP + """
_r={'fw':None,'lists':{},'parts':_gone,'app':False}
try:
 from Maix import utils as _u
 _r['fw']=bytes(_u.flash_read(0,5))
except Exception:
 pass
for _d in _ds:
 try:
  _f=open(_d+'/models.json')
  _r['lists'][_d]=_f.read()
  _f.close()
 except OSError:
  pass
_a=_sys.modules.get('app')
_r['app']=_a is not None and getattr(_a,'current',None) is not None
print(repr(_r))
"""


@dataclass(frozen=True)
class Listed:
    """A model a models.json on the board names, where the board's flash holds it."""
    name: str
    offset: int
    size: int
    sha256: str          # of the bytes at offset ("" when models.json did not say: an older deploy)
    listing: str         # the models.json that names it, e.g. /flash/models.json

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass
class OnBoard:
    firmware_size: int = None            # None: no valid kflash header at 0
    listings: dict = field(default_factory=dict)   # "/flash/models.json" -> its text
    listed: list = field(default_factory=list)     # [Listed]
    notes: list = field(default_factory=list)      # what could not be read, said by deploy
    removed_parts: list = field(default_factory=list)
    app_running: bool = False


def firmware_size(head) -> int:
    """Size of the firmware .bin from the 5 bytes kflash writes before it (flag, u32 length); None when they do
    not look like a header."""
    if not isinstance(head, bytes) or len(head) != 5 or head[0] > 3:
        return None
    n = int.from_bytes(head[1:5], "little")
    return n if 0 < n < SPIFFS_OFFSET else None


def listed_models(text: str, listing: str, notes: list) -> list:
    """The flash models a models.json names; what cannot be read is a note (that file protects nothing)."""
    try:
        doc = json.loads(text)
        models = doc["models"]
        assert isinstance(models, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        notes.append("%s is not a readable models.json: the app on the board cannot use it either" % listing)
        return []
    out = []
    for m in models:
        src = m.get("source") if isinstance(m, dict) else None
        if not isinstance(src, dict) or not isinstance(src.get("flash"), int) or not isinstance(m.get("name"), str):
            continue                   # a file on /sd, or an entry the app refuses anyway
        size = src.get("size")
        out.append(Listed(m["name"], src["flash"], size if isinstance(size, int) and size > 0 else 0,
                          src.get("sha256", "") if isinstance(src.get("sha256"), str) else "", listing))
    return out


def extent_of_unsized(link: Link, listed: list) -> list:
    """Entries written before models.json carried sizes: their size read from the kmodel header in flash."""
    need = [x for x in listed if not x.size]
    if not need:
        return listed
    from host_tools.k210.bigendian import from_big_endian
    from host_tools.sim.firmware.kpu import v3_extent
    code = "from Maix import utils as _u\nprint(repr([bytes(_u.flash_read(a,4096)) for a in %r]))" % [
        x.offset for x in need]
    heads = ast.literal_eval(link.exec(code, timeout=60).decode().strip())
    sized = {}
    for x, head in zip(need, heads):
        # the header and layer table give the whole size: little-endian (kpu.load) or word-swapped (load_flash)
        n = v3_extent(head, 0) or v3_extent(from_big_endian(head), 0)
        if not n or x.offset + n > SPIFFS_OFFSET:
            n = 4096                 # no kmodel there: nothing the app could load; keep its first sector
        sized[x] = n
    return [x if x.size else Listed(x.name, x.offset, sized[x], x.sha256, x.listing) for x in listed]


def remove_parts(link: Link, folders=LISTINGS) -> list:
    """Remove the *.part files an interrupted copy left in these board folders; returns their paths."""
    code = "import uos as _os\n_ds=%r\n" % (tuple(folders),) + SWEEP + "print(repr(_gone))"
    return ast.literal_eval(link.exec(code).decode().strip())


def read(link: Link) -> OnBoard:
    """One exec: firmware header, both models.json, stray .part files (removed), whether the app ran."""
    try:
        r = ast.literal_eval(link.exec(SNIPPET, timeout=60).decode().strip())
    except (DeviceError, ValueError, SyntaxError) as e:
        return OnBoard(notes=["the board could not say what it holds (%s)" % e])
    state = OnBoard(firmware_size=firmware_size(r["fw"]), removed_parts=list(r["parts"]), app_running=r["app"])
    for d in LISTINGS:
        if d in r["lists"]:
            name = d + "/models.json"
            state.listings[name] = r["lists"][d]
            state.listed += listed_models(r["lists"][d], name, state.notes)
    state.listed = extent_of_unsized(link, state.listed)
    return state
