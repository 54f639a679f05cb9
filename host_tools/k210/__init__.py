"""The K210 chip and its MaixPy firmware: the one place each fact about them is written.

Every other package (kmodel, compiler, pipeline, sim, deploy) imports these facts from here and restates none of
them. This package imports nothing from the rest of host_tools.

- `kpu`: the KPU's limits and layout rules (maps, channels, kernels, KPU RAM rows, weight loads, pool types)
- `rules`: the model rules the compiler refuses by and the checker reports, with their ids
- `firmware`: MaixPy builds (full, minimum), their heap budgets, camera/LCD buffers, which build and load mode
  a model needs
- `flash`: the 16 MiB flash map (firmware, models, SPIFFS) and the model placement rule
- `bigendian`: the word-swapped form kpu.load_flash reads
- `errors`: the firmware's KPU error codes and texts
- `pixels`: RGB565, luma, the camera's and pix_to_ai's buffers, cut and resize (py_image.c's arithmetic)
- `memory`: the GC heap's blocks and pool, the firmware objects' sizes, the camera's buffers, xalloc's
  MemoryError, lcd.draw_string's leak
- `font`: the 8x12 font's cells and proportional layout
- `startup`: what the ROM and MaixPy do at power-up (ISP pin, scripts, the SD card, the welcome script's mark)
- `registers`: the K210_CONV registers, BN and activation tables, and the fields the layout sets
- `arith`: one conv layer's integer arithmetic, one function per stage (conv sums, BN, activation, pools)
- `envelope`: the field limits and datapath widths vendor-made kmodels stay within
"""
