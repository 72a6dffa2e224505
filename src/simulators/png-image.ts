import { crc32, deflateSync } from "node:zlib";
import type { SeededRandom } from "./seeded-random.ts";

/** The eight bytes every PNG file starts with. */
export const pngSignature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** What to draw. */
export interface XrayPictureOptions {
  readonly width: number;
  readonly height: number;
  /** Drives the noise and a small shift of the anatomy, so each image has its own bytes and SHA-256. */
  readonly random: SeededRandom;
  /** Written into a tEXt chunk. */
  readonly description: string;
}

/**
 * Renders a valid 8-bit greyscale PNG that looks vaguely like a radiograph: a dark
 * field, a bright elliptical body with a soft edge, darker lung fields and film
 * grain. The grain keeps deflate from shrinking it to nothing, so a 768x640 image is
 * a few hundred KB: enough for chunked and resumed downloads to mean something.
 */
export function renderXrayPng(options: XrayPictureOptions): Buffer {
  const { width, height, random } = options;
  const cx = width / 2 + (random.next() - 0.5) * width * 0.05;
  const cy = height / 2 + (random.next() - 0.5) * height * 0.05;
  const rows = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width + 1);
    rows[row] = 0; // filter type None
    for (let x = 0; x < width; x++) {
      const body = 1 - ellipse(x, y, cx, cy, width * 0.42, height * 0.48);
      const lungs =
        Math.max(0, 1 - ellipse(x, y, cx - width * 0.16, cy - height * 0.05, width * 0.12, height * 0.3)) +
        Math.max(0, 1 - ellipse(x, y, cx + width * 0.16, cy - height * 0.05, width * 0.12, height * 0.3));
      const spine = Math.max(0, 1 - Math.abs(x - cx) / (width * 0.03)) * clamp(body * 3);
      const level = 20 + 170 * clamp(body * 1.6) - 120 * clamp(lungs * 1.8) + 70 * spine + (random.next() - 0.5) * 24;
      rows[row + 1 + x] = Math.round(clamp(level / 255) * 255);
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 0, 0, 0, 0], 8); // bit depth 8, greyscale, deflate, adaptive filtering, no interlace
  return Buffer.concat([
    pngSignature,
    chunk("IHDR", header),
    chunk("tEXt", Buffer.from(`Description\0${options.description}`, "latin1")),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** One PNG chunk: length, type, data, and the CRC-32 of type and data. */
function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** 0 at the centre of the ellipse, 1 on its edge, more outside. */
function ellipse(x: number, y: number, cx: number, cy: number, rx: number, ry: number): number {
  return Math.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2);
}

function clamp(value: number): number {
  return Math.min(1, Math.max(0, value));
}
