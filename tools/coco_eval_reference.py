"""Makes the shared COCO-evaluation test case of crate `ml` and pycocotools' numbers for it.

    python3 -m venv /tmp/pcc && /tmp/pcc/bin/pip install pycocotools numpy
    /tmp/pcc/bin/python tools/coco_eval_reference.py crates/ml/tests/fixtures/coco_eval_case.json

The case is drawn from a fixed seed: 6 images, 4 categories (one without ground truth, whose
detections must not count), crowd-free ground truth, detections that are jittered copies of the
ground truth (some wrong class, some duplicates), pure false positives, tied scores and an image with
more than 100 detections (maxDets). Boxes and scores are rounded to 2 decimals so Rust and Python
parse exactly the same numbers. The Rust test `detect::metrics::tests::matches_pycocotools` must give
the same mAP within 1e-6.
"""
import contextlib, io, json, random, sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

rng = random.Random(20240611)
CATEGORIES = [0, 1, 2, 3]  # 3 has detections but no ground truth
images, gt_anns, dt_anns = [], [], []
case_images = []
for image_id in range(1, 7):
    W, H = 640, 480
    images.append({"id": image_id, "width": W, "height": H, "file_name": "%d.jpg" % image_id})
    gts, dts = [], []
    for _ in range(rng.randint(0 if image_id == 5 else 1, 6)):
        w, h = rng.uniform(8, 200), rng.uniform(8, 200)
        x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
        gts.append({"class_id": rng.choice([0, 1, 2]), "bbox": [round(v, 2) for v in (x, y, w, h)]})
    for g in gts:
        for _ in range(rng.choice([0, 1, 1, 2])):
            x, y, w, h = g["bbox"]
            s = rng.uniform(0.0, 0.15)
            box = [x + rng.uniform(-s, s) * w, y + rng.uniform(-s, s) * h,
                   w * (1 + rng.uniform(-s, s)), h * (1 + rng.uniform(-s, s))]
            cls = g["class_id"] if rng.random() > 0.15 else rng.choice(CATEGORIES)
            dts.append({"class_id": cls, "bbox": [round(v, 2) for v in box],
                        "score": round(rng.choice([0.5, rng.uniform(0.05, 1.0)]), 2)})
    n_fp = 120 if image_id == 3 else rng.randint(0, 5)
    for _ in range(n_fp):
        w, h = rng.uniform(5, 150), rng.uniform(5, 150)
        dts.append({"class_id": rng.choice(CATEGORIES),
                    "bbox": [round(v, 2) for v in (rng.uniform(0, W - w), rng.uniform(0, H - h), w, h)],
                    "score": round(rng.uniform(0.01, 0.6), 2)})
    case_images.append({"id": image_id, "ground_truth": gts, "detections": dts})
    for g in gts:
        x, y, w, h = g["bbox"]
        gt_anns.append({"id": len(gt_anns) + 1, "image_id": image_id, "category_id": g["class_id"],
                        "bbox": g["bbox"], "area": w * h, "iscrowd": 0})
    for d in dts:
        dt_anns.append({"image_id": image_id, "category_id": d["class_id"], "bbox": d["bbox"],
                        "score": d["score"]})

with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO()
    coco.dataset = {"images": images, "annotations": gt_anns,
                    "categories": [{"id": c, "name": "c%d" % c} for c in CATEGORIES]}
    coco.createIndex()
    results = coco.loadRes(dt_anns)
    ev = COCOeval(coco, results, "bbox")
    ev.evaluate(); ev.accumulate(); ev.summarize()
stats = ev.stats
case = {"description": "made by tools/coco_eval_reference.py with pycocotools; boxes are [x, y, w, h]",
        "images": case_images,
        "reference": {"map50_95": stats[0], "map50": stats[1], "map75": stats[2]}}
with open(sys.argv[1], "w") as f:
    json.dump(case, f, indent=1)
print(json.dumps(case["reference"]))
