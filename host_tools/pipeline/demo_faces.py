"""The shipped face detector: lfw_subset faces on scikit-image photos -> YOLOv2 (small MobileNet) -> int8."""
from host_tools.pipeline import arch, faces

NAME = "faces"
LABELS = ["face"]
SEED = 20240502
TRAIN_IMAGES = 2000
TEST_IMAGES = 200
EPOCHS = 14
THRESHOLD, NMS = 0.5, 0.3       # what the device uses (manifest)
EVAL_THRESHOLD = 0.05           # mAP needs the low-score detections too
INPUT_HW = (faces.FRAME[1], faces.FRAME[0])
GRID = (10, 7)                  # what run_yolo2 sees at 320x240: floor(240 / 32) = 7 rows


def build(out_dir, strategy="default", epochs=EPOCHS, seed=SEED, train_images=TRAIN_IMAGES, log=print):
    """Train, quantize, evaluate; writes <out>/faces.keras, faces_int8.tflite, faces_report.{json,md}, PNGs."""
    from host_tools.pipeline import detector, quantize, report, train
    x_tr, b_tr = faces.composites(train_images, seed)
    x_te, b_te = faces.composites(TEST_IMAGES, seed + 1, held_out=True)
    anchors = detector.kmeans_anchors(b_tr, GRID, faces.FRAME)
    log("faces: %d training composites, %d held-out, anchors %s" % (len(x_tr), len(x_te), anchors))
    model, hist = detector.train_detector(lambda: arch.yolo_v2(anchors, 1, INPUT_HW, name=NAME), x_tr, b_tr,
                                          anchors, frame=faces.FRAME, epochs=epochs, strategy=strategy, seed=seed,
                                          desc="faces")
    if tuple(model.output_shape[1:3]) != (GRID[1], GRID[0]):
        raise detector.DetectorError("faces: model grid %s is not the %dx%d the device decodes"
                                     % (model.output_shape[1:3], *GRID))
    calib = quantize.representative(train.to_input(x_tr), 200, seed)
    tfl = quantize.to_int8_tflite(model, calib)
    out_float = model.predict(train.to_input(x_te), verbose=0, batch_size=16)
    out_int8 = quantize.run_int8(tfl, x_te)
    ev_f = detector.evaluate(out_float, b_te, anchors, faces.FRAME, EVAL_THRESHOLD, NMS)
    ev_q = detector.evaluate(out_int8, b_te, anchors, faces.FRAME, EVAL_THRESHOLD, NMS)
    astro = astronaut_result(quantize.run_int8(tfl, faces.astronaut_frame()[None])[0], anchors)
    paths = report.save_model_files(out_dir, NAME, model, tfl)
    train.save_curves(hist, out_dir / (NAME + "_curves.png"), "faces: YOLOv2 small MobileNet 320x240")
    save_examples(x_te[:8], out_int8[:8], anchors, out_dir / (NAME + "_examples.png"))
    rep = {"name": NAME, "kind": "detector", "labels": LABELS, "anchors": anchors, "threshold": THRESHOLD,
           "nms": NMS, "input": [INPUT_HW[1], INPUT_HW[0], 3], "grid": list(GRID), "epochs": epochs, "seed": seed,
           "train_images": int(len(x_tr)), "test_images": int(len(x_te)), "final_loss": hist["loss"][-1],
           "float_map50": ev_f["map50"], "int8_map50": ev_q["map50"], "eval_threshold": EVAL_THRESHOLD,
           "astronaut_iou_int8": astro["iou"], "astronaut_score_int8": astro["score"]}
    report.write_report(out_dir, NAME, rep, "Face detector (lfw_subset faces composited on scikit-image photos)")
    log("faces: mAP@0.5 float %.3f, int8 %.3f; astronaut IoU %.2f" % (ev_f["map50"], ev_q["map50"], astro["iou"]))
    return rep, paths


def astronaut_result(out_hwc, anchors):
    """Best IoU of a device-threshold detection with the annotated astronaut face, and that box's score."""
    from host_tools.pipeline import detector
    a = faces.ASTRONAUT_FACE
    best = (0.0, 0.0)
    for d in detector.decode(out_hwc, anchors, THRESHOLD, NMS, faces.FRAME):
        iou = detector.box_iou((d.x, d.y, d.x + d.w, d.y + d.h), (a.x0, a.y0, a.x1, a.y1))
        best = max(best, (iou, d.value))
    return {"iou": float(best[0]), "score": float(best[1])}


def save_examples(images, outputs, anchors, path):
    """Held-out composites with the int8 model's detections at the device threshold, as one PNG."""
    import io

    from PIL import Image

    from host_tools.files import write_atomic
    from host_tools.kmodel.yolo import draw_boxes
    from host_tools.pipeline import detector
    w, h = faces.FRAME[0] // 2, faces.FRAME[1] // 2   # half size keeps the committed PNG small
    sheet = Image.new("RGB", (w * 4, h * ((len(images) + 3) // 4)))
    for i, (img, out) in enumerate(zip(images, outputs)):
        boxes = detector.decode(out, anchors, THRESHOLD, NMS, faces.FRAME)
        tile = draw_boxes(img, boxes, LABELS).resize((w, h), Image.BILINEAR)
        sheet.paste(tile, ((i % 4) * w, (i // 4) * h))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    write_atomic(path, buf.getvalue())
