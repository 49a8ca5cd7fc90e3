// @ts-check
/**
 * COCO run-length encoded masks.
 *
 * A COCO RLE is `{size: [height, width], counts}` where `counts` are alternating run lengths of
 * 0s and 1s over the pixels in column-major order (down the first column, then the second …),
 * starting with a run of 0s (possibly of length 0). `counts` is either the uncompressed array
 * of numbers or the compressed string of pycocotools (`rleToString`: each count, from the third
 * on as a difference to the count two before, in 5-bit groups with a continuation bit, offset
 * by 48 into printable ASCII).
 *
 * @typedef {{size: number[], counts: number[] | string}} Rle
 */

/**
 * Decodes pycocotools' compressed counts string into run lengths.
 * @param {string} s
 * @returns {number[]}
 */
export function decodeCountsString(s) {
  /** @type {number[]} */
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error('truncated RLE string');
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new Error(`invalid RLE character at ${p}`);
      // Arithmetic instead of bit shifts: counts may need more than 32 bits of groups.
      x += (c & 0x1f) * 32 ** k;
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && (c & 0x10)) x -= 32 ** k; // sign extension
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/**
 * Encodes run lengths as pycocotools' compressed counts string (the inverse of
 * {@link decodeCountsString}).
 * @param {number[]} counts
 * @returns {string}
 */
export function encodeCountsString(counts) {
  let out = '';
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      let c = ((x % 32) + 32) % 32; // low 5 bits, also for negatives
      x = Math.floor(x / 32); // arithmetic shift
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out += String.fromCharCode(c + 48);
    }
  }
  return out;
}

/**
 * The run lengths of an RLE, whichever form its counts have.
 * @param {Rle} rle
 * @returns {number[]}
 */
export function runLengths(rle) {
  return typeof rle.counts === 'string' ? decodeCountsString(rle.counts) : rle.counts;
}

/**
 * Decodes an RLE into a row-major mask (`mask[y * width + x]` is 1 inside).
 * @param {Rle} rle
 * @returns {{width: number, height: number, mask: Uint8Array}}
 */
export function decodeRle(rle) {
  const [height, width] = rle.size;
  const total = width * height;
  const mask = new Uint8Array(total);
  let pos = 0; // column-major position
  let value = 0;
  for (const run of runLengths(rle)) {
    if (run < 0 || pos + run > total) throw new Error('RLE counts exceed the mask size');
    if (value === 1) {
      for (let i = pos; i < pos + run; i++) {
        const x = Math.floor(i / height);
        const y = i - x * height;
        mask[y * width + x] = 1;
      }
    }
    pos += run;
    value ^= 1;
  }
  return { width, height, mask };
}

/**
 * Pixels inside the mask.
 * @param {Rle} rle
 */
export function rleArea(rle) {
  let area = 0;
  runLengths(rle).forEach((run, i) => {
    if (i % 2 === 1) area += run;
  });
  return area;
}

/**
 * Encodes a row-major mask as an uncompressed COCO RLE.
 * @param {Uint8Array} mask
 * @param {number} width
 * @param {number} height
 * @returns {{size: number[], counts: number[]}}
 */
export function encodeRle(mask, width, height) {
  /** @type {number[]} */
  const counts = [];
  let value = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x] ? 1 : 0;
      if (v !== value) {
        counts.push(run);
        run = 0;
        value = v;
      }
      run += 1;
    }
  }
  counts.push(run);
  return { size: [height, width], counts };
}
