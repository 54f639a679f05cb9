"""How long things take on a Maix Bit: the K210 cost model, one function per layer kind and per firmware step.

Everything here is a plain function of shapes and byte counts; host_tools.kmodel.board_time applies it to a
parsed kmodel and the simulator's clock (host_tools/sim/clock.py) charges the same figures.

Sources (docs/board-time.md has the calibration table and what each figure rests on):
- Clocks: MaixPy sets PLL1 to 400 MHz with kpu_div 1 (maixpy_main.c, mpconfigboard.h FREQ_PLL1_DEFAULT), so the
  KPU and the CPU both run at 400 MHz.
- KPU conv schedule: the KPU reads its maps in 64-byte RAM rows (k210.kpu.row_layout: 4 channels per row up to
  16 px wide, 2 up to 32, else ceil(w/64) rows per line) and computes a whole 64-lane row of 3x3 (or 1x1)
  windows per cycle, one (input row, output channel) pair at a time. Sipeed's forum topic 691 ("MAIX
  performance and limit for AI models") times one 3x3 conv, 128 -> 128 channels, 16-bit weights, KPU at
  300 MHz, from 4x4 to 256x256 (TOPIC_691 below): one cycle per (output channel, input-channel row group,
  line, 64-byte row) plus WRITE_BACK_CYCLES per (output channel, line, row) plus the weight fetch at
  WEIGHT_BYTES_PER_CYCLE fits nine of the ten points within 10 % (16x16: +30 %). With 8-bit weights the
  KPU is taken to do that row in half a cycle: a hypothesis, not a measurement, which is what makes the two
  whole-model figures below agree with one per-layer constant.
- Layers writing to main memory: the SDK's kpu_conv (kpu.c) streams the output FIFO by DMA, 64 bits a beat.
- CPU layers: the SDK's element loops (kpu.c: kpu_kmodel_dequantize, kpu_global_average_pool2d, kpu_softmax,
  ...) on the 400 MHz RV64GC core; cycles per element are estimates of those loops, small next to the KPU.
- MaixPy's V3 runtime spends a fixed time per conv layer on top of the KPU's own (its mechanism unknown):
  RUNTIME_LAYER_US, fitted on the whole-model figures (MobileNetV1 0.75 @ 224 in
  37-40 ms, Sipeed forum topics 1790/1811; the YOLOv2 face detector at 320x240 in 24 ms, neucrack.com/p/313);
  the SDK alone shows about 0.1-0.3 ms per layer (nncase issues 92, 96; topic 691's small maps).
- kpu.load_flash: the schedule of MaixPy's library (components/kendryte_sdk/libs/lib_sipeed_kpu.a in
  sipeed/MaixPy-v1, read from its disassembly: sipeed_kpu_load_kmodel_flash, ai_step, kpu_prepare_next_buf,
  kpu_flash_read_block): layer bodies are read from the SPI flash in quad mode (4 bits per clock at the SPI
  clock set) by DMA, at most 256 KiB per read. Single buffer: each layer's body is read, then the layer runs.
  Dual buffer: two buffers of the largest body; layers are grouped into batches (consecutive layers until their
  bodies reach batch_size, one fewer if that overflows a buffer); while one batch runs the next is read, one
  read started per layer boundary, and the next batch waits for the rest. Published: topic 1811 (MobileNetV1
  0.75, SPI 80.17 MHz: 106 ms single, 83 ms dual, 40 ms from RAM); neucrack.com/p/313 (the face detector at
  SPI 67.17 MHz: 37 ms single, 34 ms dual, 24 ms from RAM).
- kpu.load: reading the file into RAM at LOAD_BYTES_PER_S, fitted on topic 1811's one figure (421 ms for the
  1000-class MobileNet, 2.66 MB).
"""
from dataclasses import dataclass

from host_tools.k210 import kpu
from host_tools.k210.firmware import REPL_BAUD, V4_SPEED_MS

KPU_HZ = 400_000_000
CPU_HZ = 400_000_000

# cycles per (output channel, input row group, line, 64-byte row): topic 691 measured 16-bit weights at one;
# 8-bit mode (kpu.c's eight_bit_mode) at half is the hypothesis the whole-model figures support (board-time.md)
CYCLES_PER_ROW = {16: 1.0, 8: 0.5}
WRITE_BACK_CYCLES = 3.6          # per (output channel, line, 64-byte row): topic 691's fit
WEIGHT_BYTES_PER_CYCLE = 3.3     # KPU weight fetch from main memory: topic 691's 294,912 bytes in ~0.3 ms
DMA_BYTES_PER_CYCLE = 8          # output FIFO -> main memory, 64-bit DMA beats
RUNTIME_LAYER_US = 750           # MaixPy's V3 runtime per conv layer (fitted, see the docstring)
# MaixPy's V4 runtime (nncase v0.2, a closed library): its KPU conv nodes are taken at V3's cost (the one published
# conv-only pair, neucrack.com/p/313's 224x224 YOLOv2, ran 50 ms both as V4 and as V3); MatMul runs on the CPU in
# float (topic 1790: "V3 cost 37ms, while V4 cost 111ms. It is due to V4's MATMUL is not implement with KPU, but with
# CPU"), at the rate that puts MobileNetV1 0.75's 768 x 1000 classifier at that difference (fitted on topic 1790's
# pair, as the single V4 factor before it was)
MOBILENET_075_CLASSIFIER_MACS = 768 * 1000
V4_MATMUL_CYCLES_PER_MAC = (V4_SPEED_MS["mobilenet_v4_kmodel"] - V4_SPEED_MS["mobilenet_v3_kmodel"]) * 1e-3 \
    * CPU_HZ / MOBILENET_075_CLASSIFIER_MACS

FLASH_BITS_PER_CLOCK = 4         # quad SPI read
LOAD_FLASH_BATCH = 0xC000        # batch_size of MaixPy's load_flash demo (demo_load_big_model.py) and of neucrack's
                                 # figures; the API docs suggest 0x4000-0x10000
FLASH_READ_BYTES = 0x40000       # one DMA read of kpu_flash_read_once: at most 256 KiB
FLASH_READ_SETUP_US = 20         # command, address and dummy cycles + SPI and DMA set-up per read
LOAD_FLASH_HEADER_BYTES = 0x1000 # what kpu.load_flash reads at load (header and layer table)
LOAD_BYTES_PER_S = 6.3e6         # kpu.load: file -> RAM (topic 1811: 421 ms for 2.66 MB)

# CPU cycles per element of the SDK's loops (kpu.c), estimates: a float multiply-add with a load and a store is
# ~8 cycles on the K210's core; expf ~60.
CPU_CYCLES_PER_ELEMENT = {
    "ADD": 8, "QUANTIZED_ADD": 12, "GLOBAL_AVERAGE_POOL2D": 4, "QUANTIZED_MAX_POOL2D": 4, "AVERAGE_POOL2D": 6,
    "QUANTIZE": 12, "DEQUANTIZE": 8, "REQUANTIZE": 4, "L2_NORMALIZATION": 16, "SOFTMAX": 70, "CONCAT": 1,
    "QUANTIZED_CONCAT": 1, "FULLY_CONNECTED": 3, "TENSORFLOW_FLATTEN": 3, "RESIZE_NEAREST_NEIGHBOR": 6,
    "QUANTIZED_RESIZE_NEAREST_NEIGHBOR": 4, "CHANNELWISE_DEQUANTIZE": 8, "LOGISTIC": 70, "K210_ADD_PADDING": 4,
    "K210_REMOVE_PADDING": 4, "K210_UPLOAD": 2,
}
CPU_LAYER_US = 5                 # the SDK's dispatch of one CPU layer (ai_step's switch)


def conv_cycles(in_c: int, in_h: int, in_w: int, out_c: int, depthwise: bool, weight_bits: int = 8) -> float:
    """KPU cycles of one conv layer's compute and write-back (the pool stage rides along)."""
    lay = kpu.row_layout(in_w)
    groups = -(-in_c // lay.groups)              # 64-byte rows of input channels per line
    lines = in_h * lay.row_len
    compute = (groups if depthwise else out_c * groups) * lines * CYCLES_PER_ROW[weight_bits]
    return compute + WRITE_BACK_CYCLES * out_c * lines


def kpu_conv_us(in_c: int, in_h: int, in_w: int, out_c: int, depthwise: bool, weight_bytes: int,
                main_out_bytes: int = 0, weight_bits: int = 8) -> float:
    """One K210_CONV layer from RAM: runtime set-up + weight fetch + compute + output DMA to main memory."""
    cycles = conv_cycles(in_c, in_h, in_w, out_c, depthwise, weight_bits) \
        + weight_bytes / WEIGHT_BYTES_PER_CYCLE \
        + main_out_bytes / DMA_BYTES_PER_CYCLE
    return RUNTIME_LAYER_US + cycles / KPU_HZ * 1e6


def v4_matmul_us(macs: int) -> float:
    """A V4 MatMul node: float multiply-adds on the 400 MHz core (V4_MATMUL_CYCLES_PER_MAC)."""
    return CPU_LAYER_US + macs * V4_MATMUL_CYCLES_PER_MAC / CPU_HZ * 1e6


def cpu_layer_us(kind: str, elements: int) -> float:
    """One CPU layer of the SDK runtime: its element loop on the 400 MHz core."""
    return CPU_LAYER_US + elements * CPU_CYCLES_PER_ELEMENT.get(kind, 8) / CPU_HZ * 1e6


def flash_read_us(nbytes: int, spi_hz: int) -> float:
    """Reading nbytes from the SPI flash in quad mode at spi_hz, in reads of at most FLASH_READ_BYTES."""
    reads = -(-nbytes // FLASH_READ_BYTES)
    return reads * FLASH_READ_SETUP_US + nbytes * 8 / (FLASH_BITS_PER_CLOCK * spi_hz) * 1e6


def load_flash_batches(bodies, batch_bytes: int = LOAD_FLASH_BATCH) -> list:
    """(first, end) layer ranges the dual buffer reads at once (kpu_prepare_next_buf): consecutive layers until
    their bodies reach batch_bytes, one fewer when that overflows a buffer (the largest body). The library backs
    off one layer only, which keeps a batch inside its buffer while batch_bytes <= the largest body; above that
    it would overrun the buffer, and this backs off further instead."""
    cap, out, i = max(bodies), [], 0
    while i < len(bodies):
        j, total = i, 0
        while j < len(bodies) and (total < batch_bytes or j == i):
            total += bodies[j]
            j += 1
        while total > cap and j - i > 1:
            j -= 1
            total -= bodies[j]
        out.append((i, j))
        i = j
    return out


def load_flash_forward_us(layers, dual: bool, spi_hz: int, batch_bytes: int = LOAD_FLASH_BATCH) -> float:
    """A forward with kpu.load_flash: layers is [(run_us, body_bytes)]; every layer's body comes from flash.
    Single buffer: each layer read, then run. Dual buffer: batches (load_flash_batches) in two buffers; the
    first is read before anything runs; while batch k runs, batch k+1 is read, one DMA read (<= 256 KiB)
    started at each layer boundary when the previous one is done; batch k+1 then waits for the rest."""
    if not layers:
        return 0.0
    if not dual:
        return sum(flash_read_us(n, spi_hz) + t for t, n in layers)
    runs, bodies = [t for t, _ in layers], [n for _, n in layers]
    batches = load_flash_batches(bodies, batch_bytes)
    now = flash_read_us(sum(bodies[slice(*batches[0])]), spi_hz)
    for k, (first, end) in enumerate(batches):
        pending = sum(bodies[slice(*batches[k + 1])]) if k + 1 < len(batches) else 0
        dma_free = now
        for i in range(first, end):
            if pending and dma_free <= now:
                chunk = min(pending, FLASH_READ_BYTES)
                dma_free, pending = now + flash_read_us(chunk, spi_hz), pending - chunk
            now += runs[i]
        now = max(now, dma_free) + (flash_read_us(pending, spi_hz) if pending else 0.0)
    return now


def uart_us(chars: int) -> float:
    """Printing over the REPL UART: REPL_BAUD, 10 bits a character, the caller waiting."""
    return chars * 10 / REPL_BAUD * 1e6


def load_flash_load_us(spi_hz: int) -> float:
    """kpu.load_flash itself: sipeed_kpu_load_kmodel_flash reads the header (the first LOAD_FLASH_HEADER_BYTES) and
    prints "SPI freq <hz> Hz\r\n" over the REPL UART; the buffers' mallocs are small next to that."""
    return flash_read_us(LOAD_FLASH_HEADER_BYTES, spi_hz) + uart_us(len("SPI freq %d Hz\r\n" % spi_hz))


def kpu_load_us(model_bytes: int) -> float:
    """kpu.load: the kmodel read from flash or SD into the heap."""
    return model_bytes / LOAD_BYTES_PER_S * 1e6


@dataclass(frozen=True)
class Figure:
    """A published Maix Bit measurement the cost model is held to (docs/board-time.md, tests/test_board_time.py)."""
    model: str                  # a host_tools.pipeline.calibration_models name
    quantity: str               # 'ram' | 'load_flash_dual' | 'load_flash_single' | 'load' | 'load_flash_load' (ms)
                                # | 'loop_fps'
    low: float
    high: float
    source: str
    spi_hz: int = None          # the SPI clock of a load_flash figure, as the firmware printed it
    batch: int = LOAD_FLASH_BATCH   # load_flash's batch_size (dual buffer)
    yolo2: bool = False         # timed as kpu.run_yolo2: the forward and its region layer

    @property
    def middle(self) -> float:
        return (self.low + self.high) / 2

    def holds(self, predicted: float, tolerance: float = 0.15) -> bool:
        """Inside the published range, or within tolerance of its middle."""
        return self.low <= predicted <= self.high or abs(predicted / self.middle - 1) <= tolerance


# Sipeed forum topic 691: one 3x3 conv, 128 -> 128 channels, 16-bit weights, KPU at 300 MHz, SDK (no MaixPy):
# (width, height, ms)
TOPIC_691 = ((4, 4, 0.339), (16, 4, 0.339), (16, 16, 0.417), (32, 16, 0.692), (32, 32, 1.138), (64, 32, 2.125),
             (64, 64, 3.891), (128, 64, 7.709), (128, 128, 14.778), (256, 256, 57.756))
TOPIC_691_KPU_HZ = 300_000_000


def topic_691_ms(w: int, h: int) -> float:
    """The model's time for topic 691's layer: compute, write-back and weight fetch, without MaixPy's runtime."""
    cycles = conv_cycles(128, h, w, 128, False, 16) + 128 * 128 * 9 * 2 / WEIGHT_BYTES_PER_CYCLE
    return cycles / TOPIC_691_KPU_HZ * 1e3


# SPI clocks the firmware printed ("SPI freq ... Hz"): the nearest the divider gives to the speed asked for
SPI_TOPIC_1811_HZ = 80_166_666
SPI_NEUCRACK_HZ = 67_166_666

PUBLISHED = (
    Figure("mobilenet_0.75_224", "ram", 37, 40, "TFG tutorial / Sipeed forum topic 1790 (37 ms); topic 1811 (40 ms)"),
    Figure("mobilenet_0.75_224", "load_flash_dual", 83, 83, "Sipeed forum topic 1811 (SPI 80.17 MHz, batch not stated)",
           SPI_TOPIC_1811_HZ),
    Figure("mobilenet_0.75_224", "load_flash_single", 106, 106, "Sipeed forum topic 1811 (SPI 80.17 MHz)",
           SPI_TOPIC_1811_HZ),
    Figure("mobilenet_0.75_224", "load", 421, 421, "Sipeed forum topic 1811"),
    Figure("mobilenet_0.75_224", "load_flash_load", 2, 2, "Sipeed forum topic 1811 (kpu.load_flash itself)",
           SPI_TOPIC_1811_HZ),
    Figure("face_yolov2_320x240", "ram", 24, 24, "neucrack.com/p/313 (V3 YOLOv2 face detection at 320x240)"),
    Figure("face_yolov2_320x240", "load_flash_single", 37, 37, "neucrack.com/p/313 (SPI 67.17 MHz)", SPI_NEUCRACK_HZ),
    Figure("face_yolov2_320x240", "load_flash_dual", 34, 34, "neucrack.com/p/313 (SPI 67.17 MHz; batch 0xC000 as "
           "in MaixPy's demo of this model)", SPI_NEUCRACK_HZ),
    Figure("yolo20_fixture", "loop_fps", 19.5, 19.5, "MaixPy 20-class YOLO demo, whole loop (maixpy-firmware-facts.md)"),
)

# neucrack.com/p/313's "model x" (V3 YOLOv2, 224x224x3 in, 7x7x5x46 out, timed as run_yolo2): its architecture is not
# stated, so these are readings of an assumed model (calibration_models), printed by bench/board_time.py
MODEL_X = "yolov2_mobilenet_0.75_224"
MODEL_X_READINGS = (
    Figure(MODEL_X, "ram", 50, 50, "neucrack.com/p/313 model x, run_yolo2", yolo2=True),
    Figure(MODEL_X, "load_flash_single", 117, 117, "neucrack.com/p/313 model x (SPI 67.17 MHz)", SPI_NEUCRACK_HZ,
           yolo2=True),
    Figure(MODEL_X, "load_flash_dual", 97, 97, "neucrack.com/p/313 model x (SPI 67.17 MHz, batch 0xC000)",
           SPI_NEUCRACK_HZ, 0xC000, True),
    Figure(MODEL_X, "load_flash_dual", 90, 90, "neucrack.com/p/313 model x (SPI 67.17 MHz, batch 0xC000*8)",
           SPI_NEUCRACK_HZ, 0xC000 * 8, True),
)
# the same post's model x as V4, read through the V3 build (V4's KPU nodes cost what V3's do): 50 ms from RAM,
# 112 ms single, 105 ms dual "reading by layer, not by batch" (batch 1: one layer per read)
MODEL_X_V4_READINGS = (
    Figure(MODEL_X, "ram", 50, 50, "neucrack.com/p/313 model x as V4, run_yolo2", yolo2=True),
    Figure(MODEL_X, "load_flash_single", 112, 112, "neucrack.com/p/313 model x as V4 (SPI 67.17 MHz)",
           SPI_NEUCRACK_HZ, yolo2=True),
    Figure(MODEL_X, "load_flash_dual", 105, 105, "neucrack.com/p/313 model x as V4 (SPI 67.17 MHz, by layer)",
           SPI_NEUCRACK_HZ, 1, True),
)

# -- the rest of a camera loop (the simulator's clock charges these: host_tools/sim/clock.py COSTS) --
CAMERA_FPS = 60                  # OV2640 frames per second at QVGA (its CIF timing); the DVP takes one per period
SNAPSHOT_CYCLES_PER_PIXEL = 5    # sensor.snapshot's hand-over: reverse_u32pixel over the RGB565 frame
PIXEL_OP_CYCLES = 6              # py_image loops (cut, resize, pix_to_ai, drawing) per pixel touched
LCD_BITS_PER_CLOCK = 8           # lcd.display: RGB565 over the 8-line SPI at lcd.init's freq (15 MHz default)
REGION_CYCLES_PER_VALUE = 90     # run_yolo2's region layer (sigmoid, softmax, boxes, NMS) per output value:
                                 # ~2 ms for the 20-class YOLO's 8,750 values


def snapshot_us(pixels: int) -> float:
    return pixels * SNAPSHOT_CYCLES_PER_PIXEL / CPU_HZ * 1e6


def pixel_op_us(pixels: int) -> float:
    return pixels * PIXEL_OP_CYCLES / CPU_HZ * 1e6


def lcd_display_us(pixels: int, spi_hz: int) -> float:
    return pixels * 16 / (LCD_BITS_PER_CLOCK * spi_hz) * 1e6


def region_us(values: int) -> float:
    return values * REGION_CYCLES_PER_VALUE / CPU_HZ * 1e6
