// @ts-check
/** Segmentation requests and results in COCO form. */

/**
 * The `POST /segment` body; a dragged box goes as `box: [x, y, w, h]` in source pixels.
 * @param {string} imageUrl
 * @param {string} prompt
 * @param {number[] | null} [box]
 */
export function segmentRequest(imageUrl, prompt, box) {
  /** @type {{image_url: string, text_prompt: string, box?: number[]}} */
  const body = { image_url: imageUrl, text_prompt: prompt.trim() };
  if (box && box[2] > 0 && box[3] > 0) body.box = box;
  return body;
}

/**
 * A result (`GET /results/{id}`) as a COCO annotation file: one image, one category per label,
 * one annotation per instance with its RLE, box, area and score.
 * @param {{id: string, source_image_url: string, text_prompt: string, instances: any[]}} result
 * @param {number[]} [only] indices of the instances to include (default all)
 */
export function cocoFromResult(result, only) {
  const instances = result.instances.map((inst, i) => ({ inst, i })).filter(({ i }) => !only || only.includes(i));
  const first = result.instances[0]?.segmentation?.size ?? [0, 0];
  const labels = [...new Set(result.instances.map((i) => i.label))];
  return {
    info: { description: `Segmentation result ${result.id}`, prompt: result.text_prompt },
    images: [{ id: 1, file_name: result.source_image_url.split('?')[0].split('/').pop() ?? result.id, height: first[0], width: first[1] }],
    categories: labels.map((name, i) => ({ id: i + 1, name })),
    annotations: instances.map(({ inst, i }) => ({
      id: i + 1,
      image_id: 1,
      category_id: labels.indexOf(inst.label) + 1,
      segmentation: inst.segmentation,
      area: inst.area,
      bbox: inst.bbox,
      iscrowd: 0,
      score: inst.score,
    })),
  };
}
