"""What a model must be for the stock MaixPy runtime and the KPU: one list of rules, one set of ids.

The compiler refuses a model with the id of the rule it breaks (CompileError.rule), and the checker reports the
very same ids, because it runs the compiler. The numbers behind each rule live in kpu.py, camera.py and
firmware.py.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    id: str
    text: str

    def __str__(self):
        return self.id


RULES = (
    Rule("format", "a tflite flatbuffer with one subgraph"),
    Rule("input", "one image input [1, H, W, C]: C 1 (grayscale) or 3 (RGB), from 4x4 up to the camera's 320x240"),
    Rule("input-quant", "int8 input with scale 1/255 and zero point -128, so the camera byte is the input"),
    Rule("int8", "a fully-integer tflite: int8 per-tensor activations, constant int8 weights, one weight zero "
                 "point per layer"),
    Rule("op", "only ops the stock kmodel V3 runtime runs: conv, depthwise conv, ReLU/ReLU6/LeakyReLU after a conv, "
               "KPU pools, global average pool, dense, softmax, logistic, flatten/reshape, concat, pad"),
    Rule("first-layer", "the first layer is a KPU conv: the runtime feeds the camera image to the KPU"),
    Rule("kernel", "KPU convolutions are square 1x1 or 3x3"),
    Rule("stride", "KPU convolutions run at stride 1 or 2, the same both ways"),
    Rule("dilation", "the KPU has no dilated convolution"),
    Rule("depth-multiplier", "a KPU depthwise conv maps each channel to one (depth_multiplier 1)"),
    Rule("padding", "a 3x3 conv pads exactly 1 on every side, a 1x1 none; stride 2 is ZeroPadding2D((1,1)) + "
                    "VALID (TensorFlow's SAME at stride 2 samples the other phase)"),
    Rule("stride2-size", "stride 2 keeps floor(n/2) of each side: the map must have even sizes"),
    Rule("map-size", "KPU maps are 4..512 wide and 4..256 high"),
    Rule("channels", "KPU maps have at most 1024 channels"),
    Rule("channel-pixels", "a KPU output channel holds at most 65536 pixels (the DMA count is 16 bits): pool or "
                           "stride before a full-size map leaves the KPU"),
    Rule("weight-loads", "a KPU layer's weights go in at most 64 loads of 30 KiB"),
    Rule("activation", "activations run in a conv's table: linear, ReLU, ReLU6, LeakyReLU with 0 <= alpha < 1, "
                       "directly after the conv"),
    Rule("pool", "pools keep the quantization and carry no activation"),
    Rule("graph", "the layers the runtime takes: PAD only in front of a conv, reshape to a vector, concat of "
                  "channels, softmax of a vector, MEAN over height and width"),
    Rule("kpu-ram", "the maps live at one time fit the 2 MiB KPU RAM"),
    Rule("main-memory", "the CPU layers' buffers fit the K210's 6 MiB of SRAM"),
    Rule("memory", "the model loads with a MaixPy build: kpu.load into the system heap, or kpu.load_flash with "
                   "every layer below 2 MiB"),
    Rule("envelope", "each KPU conv layer's arithmetic stays within what vendor-made kmodels use (envelope.py): "
                     "its accumulator within 25 bits, a ReLU6 clamp at byte 238 or below or at 255"),
    Rule("calibration", "a float model's KPU layers compute in uint8: their ranges come from calibration images "
                        "(compile --dataset DIR), as ncc's --dataset"),
    Rule("compiler", "the compiler can express the layer (anything else it stumbles on is reported at the layer "
                     "it was compiling)"),
)
BY_ID = {r.id: r for r in RULES}

(FORMAT, INPUT, INPUT_QUANT, INT8, OP, FIRST_LAYER, KERNEL, STRIDE, DILATION, DEPTH_MULTIPLIER, PADDING,
 STRIDE2_SIZE, MAP_SIZE, CHANNELS, CHANNEL_PIXELS, WEIGHT_LOADS, ACTIVATION, POOL, GRAPH, KPU_RAM, MAIN_MEMORY, MEMORY,
 ENVELOPE, CALIBRATION, COMPILER) = RULES
