#!/usr/bin/env python3
"""Regenerates the image fixtures under tests/fixtures/image/ with real TensorFlow 2.21.

Usage (from the repository root):

    /work/venv/bin/python tools/make_fixtures_image.py [fixture names...]

Fixtures (each a SavedModel + inputs.json + golden.json, see tests/fixtures/README.md):

  image_resize   every resize op (bilinear / nearest / bicubic / area with legacy, align_corners
                 and half-pixel centres, up and down, float32 and uint8 inputs) and
                 ScaleAndTranslate with every kernel, with and without antialias, plus the
                 tf.image.resize v2 front doors that compile to them.
  image_ops      CropAndResize, ExtractImagePatches, RGB<->HSV, AdjustContrastv2 /
                 Saturation / Hue, SpaceToDepth / DepthToSpace, Conv2DBackpropInput, LRN,
                 MirrorPad, ExtractGlimpseV2.
  image_bytes    an image-bytes classifier: serving signature takes a batch of encoded
                 JPEG / PNG strings, decodes each in tf.map_fn (as Model Garden's image_bytes
                 exports do), resizes to 32x32 and runs a small conv net; a second output
                 gives the decoded+resized pixels so decoding itself is checked.
  image_decode   DecodePng / DecodeGif / DecodeBmp / DecodeImage / ExtractJpegShape on
                 single images, raw decoded pixels as outputs (exact).
"""

import base64
import io
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

R = tf.raw_ops
ROOT = "image"


def write_json(path, obj):
    """Compact JSON (one line): the image goldens are long flat lists."""
    import json
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                  allow_nan=False)
        f.write("\n")


def finish(out, inputs, feed=None):
    write_json(os.path.join(out, "inputs.json"), inputs)
    write_json(os.path.join(out, "golden.json"),
               mf.run_signature(out, inputs if feed is None else feed))
    mf.write_signatures_json(out)
    mf.write_variables_json(out)


def fresh(name):
    return mf.fresh_dir(os.path.join(ROOT, name))


def save_module(module, out, inputs):
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
    finish(out, inputs)
    return out


# --------------------------------------------------------------------------
# image_resize
# --------------------------------------------------------------------------

KERNELS = ["lanczos1", "lanczos3", "lanczos5", "gaussian", "box", "triangle", "keyscubic",
           "mitchellcubic"]


class ResizeModule(tf.Module):
    @tf.function(input_signature=[
        tf.TensorSpec([2, 5, 7, 3], tf.float32),
        tf.TensorSpec([1, 6, 9, 4], tf.uint8),
    ])
    def serve(self, img, img_u8):
        out = {}
        up, down = [8, 10], [3, 4]
        modes = {"legacy": (False, False), "align": (True, False), "half": (False, True)}
        for mode, (ac, hp) in modes.items():
            for tag, size in (("up", up), ("down", down)):
                out[f"bilinear_{mode}_{tag}"] = R.ResizeBilinear(
                    images=img, size=size, align_corners=ac, half_pixel_centers=hp)
                out[f"nearest_{mode}_{tag}"] = R.ResizeNearestNeighbor(
                    images=img, size=size, align_corners=ac, half_pixel_centers=hp)
                out[f"bicubic_{mode}_{tag}"] = R.ResizeBicubic(
                    images=img, size=size, align_corners=ac, half_pixel_centers=hp)
        out["bilinear_u8_half"] = R.ResizeBilinear(
            images=img_u8, size=[4, 13], half_pixel_centers=True)
        out["bicubic_u8_half"] = R.ResizeBicubic(
            images=img_u8, size=[11, 5], half_pixel_centers=True)
        out["nearest_u8_half"] = R.ResizeNearestNeighbor(
            images=img_u8, size=[11, 5], half_pixel_centers=True)
        out["bilinear_same_size"] = R.ResizeBilinear(images=img, size=[5, 7])
        out["bilinear_to_1x1_align"] = R.ResizeBilinear(images=img, size=[1, 1],
                                                        align_corners=True)
        for ac in (False, True):
            for tag, size in (("up", up), ("down", down), ("odd", [4, 3])):
                out[f"area_{'align' if ac else 'legacy'}_{tag}"] = R.ResizeArea(
                    images=img, size=size, align_corners=ac)
        out["area_u8"] = R.ResizeArea(images=img_u8, size=[4, 5])
        for k in KERNELS:
            for aa in (False, True):
                t = "aa" if aa else "noaa"
                out[f"sat_{k}_{t}_down"] = R.ScaleAndTranslate(
                    images=img, size=[3, 4], scale=[3 / 5, 4 / 7], translation=[0.0, 0.0],
                    kernel_type=k, antialias=aa)
            out[f"sat_{k}_up"] = R.ScaleAndTranslate(
                images=img, size=[8, 10], scale=[8 / 5, 10 / 7], translation=[0.0, 0.0],
                kernel_type=k, antialias=True)
        out["sat_translated"] = R.ScaleAndTranslate(
            images=img_u8, size=[7, 8], scale=[1.3, 0.7], translation=[-1.5, 2.25],
            kernel_type="lanczos3", antialias=True)
        # The v2 front door (what Keras' Resizing layer calls).
        for m in ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5",
                  "gaussian", "mitchellcubic"):
            out[f"v2_{m}"] = tf.image.resize(img, [4, 9], method=m)
            out[f"v2_{m}_aa"] = tf.image.resize(img, [3, 3], method=m, antialias=True)
        out["v2_pad"] = tf.image.resize_with_pad(img_u8, 8, 8)
        return out


def build_image_resize():
    out = fresh("image_resize")
    rng = np.random.RandomState(7)
    img = (rng.randn(2, 5, 7, 3) * 50 + 100).astype(np.float32)
    img_u8 = rng.randint(0, 256, size=(1, 6, 9, 4)).astype(np.uint8)
    return save_module(ResizeModule(), out, {"img": img.tolist(), "img_u8": img_u8.tolist()})



# --------------------------------------------------------------------------
# image files: JPEG / PNG / GIF / BMP variants, all made here from seeded pixels
# --------------------------------------------------------------------------


def test_pixels(h, w, c, seed):
    """Smooth gradients plus a little noise and a sharp edge: realistic for JPEG."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = []
    for k in range(c):
        v = 128 + 90 * np.sin(x / (3.0 + k) + y / (5.0 + 2 * k)) + rng.randn(h, w) * 12
        v[h // 3: h // 2, w // 4: w // 2] = 30 + 60 * k
        chans.append(v)
    return np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)


def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png_bytes(samples, color_type, bit_depth, palette=None, trns=None, interlace=False):
    """A minimal PNG writer (filter 0) for what tf.io.encode_png cannot make: palette,
    tRNS, low bit depths and Adam7. `samples` is [h, w, k] of ints (k=1 for palette/gray)."""
    h, w = samples.shape[:2]

    def pack_rows(img):
        rows = []
        for r in img:
            flat = r.reshape(-1)
            if bit_depth == 16:
                data = b"".join(struct.pack(">H", int(v)) for v in flat)
            elif bit_depth == 8:
                data = bytes(int(v) for v in flat)
            else:
                per = 8 // bit_depth
                data = bytearray()
                for i in range(0, len(flat), per):
                    byte = 0
                    for j, v in enumerate(flat[i:i + per]):
                        byte |= int(v) << (8 - bit_depth * (j + 1))
                    data.append(byte)
                data = bytes(data)
            rows.append(b"\x00" + data)
        return b"".join(rows)

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += pack_rows(sub)
    else:
        raw = pack_rows(samples)
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0,
                                          1 if interlace else 0))
    if palette is not None:
        out += png_chunk(b"PLTE", bytes(palette))
    if trns is not None:
        out += png_chunk(b"tRNS", bytes(trns))
    out += png_chunk(b"IDAT", zlib.compress(raw, 9))
    out += png_chunk(b"IEND", b"")
    return out


def pil_bytes(img, fmt, **kw):
    from PIL import Image
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def make_images():
    """name -> encoded bytes."""
    from PIL import Image
    rgb = test_pixels(24, 20, 3, 1)
    rgba = test_pixels(17, 23, 4, 2)
    gray = test_pixels(19, 21, 1, 3)
    big = test_pixels(64, 48, 3, 4)
    im = {}
    im["jpeg_420"] = tf.io.encode_jpeg(big, quality=90).numpy()
    im["jpeg_444"] = tf.io.encode_jpeg(big, quality=90, chroma_downsampling=False).numpy()
    im["jpeg_progressive"] = tf.io.encode_jpeg(big, quality=85, progressive=True).numpy()
    im["jpeg_gray"] = tf.io.encode_jpeg(test_pixels(40, 36, 1, 5), quality=90).numpy()
    im["jpeg_restart"] = pil_bytes(Image.fromarray(big), "JPEG", quality=88,
                                   restart_marker_blocks=4)
    im["jpeg_odd_422"] = pil_bytes(Image.fromarray(test_pixels(31, 29, 3, 6)), "JPEG",
                                   quality=80, subsampling=1)
    im["png_rgb"] = tf.io.encode_png(rgb).numpy()
    im["png_rgba"] = tf.io.encode_png(rgba).numpy()
    im["png_gray"] = tf.io.encode_png(gray).numpy()
    im["png_16"] = tf.io.encode_png(
        (test_pixels(13, 11, 3, 7).astype(np.uint16) * 257 + 3).astype(np.uint16)).numpy()
    pal_idx = (test_pixels(15, 18, 1, 8) // 16).astype(np.uint8)
    palette = [(i * 16, 255 - i * 15, (i * 40) % 256) for i in range(16)]
    pal = [v for c in palette for v in c]
    im["png_palette"] = png_bytes(pal_idx, 3, 4, palette=pal)
    im["png_palette_trns"] = png_bytes(pal_idx, 3, 8, palette=pal, trns=[255, 0, 128, 7])
    im["png_interlaced"] = png_bytes(rgb, 2, 8, interlace=True)
    im["png_gray2_interlaced"] = png_bytes(gray // 64, 0, 2, interlace=True)
    im["png_gray16_trns"] = png_bytes(gray.astype(np.uint16) * 200, 0, 16,
                                      trns=list(struct.pack(">H", 200 * int(gray[0, 0, 0]))))
    frames = [Image.fromarray(test_pixels(12, 14, 3, 10 + k)).convert("P") for k in range(3)]
    im["gif_anim"] = pil_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:],
                               duration=50, loop=0)
    im["gif_single"] = pil_bytes(Image.fromarray(rgb).convert("P"), "GIF")
    im["bmp_24"] = pil_bytes(Image.fromarray(test_pixels(9, 7, 3, 11)), "BMP")
    im["bmp_32"] = pil_bytes(Image.fromarray(test_pixels(6, 5, 4, 12)), "BMP")
    return im


DECODE_NAMES = ["jpeg_420", "jpeg_444", "jpeg_progressive", "jpeg_gray", "jpeg_restart",
                "jpeg_odd_422", "png_rgb", "png_rgba", "png_gray", "png_16", "png_palette",
                "png_palette_trns", "png_interlaced", "png_gray2_interlaced",
                "png_gray16_trns", "gif_anim", "gif_single", "bmp_24", "bmp_32"]


class DecodeModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name=n) for n in DECODE_NAMES])
    def serve(self, *args):
        b = dict(zip(DECODE_NAMES, args))
        out = {}
        for n in DECODE_NAMES:
            if n.startswith("jpeg"):
                out[n] = tf.io.decode_jpeg(b[n])
                out[n + "_gray"] = tf.io.decode_jpeg(b[n], channels=1)
                if n == "jpeg_gray":
                    out[n + "_rgb"] = tf.io.decode_jpeg(b[n], channels=3)
            elif n.startswith("png"):
                out[n] = tf.io.decode_png(b[n])
                for c in (1, 3, 4):
                    out[f"{n}_c{c}"] = tf.io.decode_png(b[n], channels=c)
                out[n + "_u16"] = tf.io.decode_png(b[n], dtype=tf.uint16)
                out[n + "_u16_c4"] = tf.io.decode_png(b[n], channels=4, dtype=tf.uint16)
            elif n.startswith("gif"):
                out[n] = tf.io.decode_gif(b[n])
                out[n + "_image"] = tf.io.decode_image(b[n], expand_animations=False)
            else:
                out[n] = tf.io.decode_bmp(b[n])
                out[n + "_c4"] = tf.io.decode_bmp(b[n], channels=4)
                out[n + "_c3"] = tf.io.decode_bmp(b[n], channels=3)
            if n in ("png_16", "jpeg_gray", "gif_single", "bmp_24", "png_gray2_interlaced"):
                out[n + "_image_f32"] = tf.io.decode_image(b[n], dtype=tf.float32,
                                                           expand_animations=False)
        out["jpeg_shape"] = tf.image.extract_jpeg_shape(b["jpeg_odd_422"])
        out["jpeg_shape64"] = tf.image.extract_jpeg_shape(b["jpeg_gray"], output_type=tf.int64)
        out["jpeg_crop"] = tf.image.decode_and_crop_jpeg(b["jpeg_420"], [3, 5, 20, 17])
        out["jpeg_png_via_decode_gif"] = tf.io.decode_gif(b["png_rgb"])
        out["png_roundtrip"] = tf.io.decode_png(tf.io.encode_png(tf.io.decode_png(b["png_rgba"])))
        out["png_roundtrip16"] = tf.io.decode_png(
            tf.io.encode_png(tf.io.decode_png(b["png_16"], dtype=tf.uint16)), dtype=tf.uint16)
        return out


def build_image_decode():
    out = fresh("image_decode")
    images = make_images()
    inputs = {n: mf.bytes_to_json(images[n]) for n in DECODE_NAMES}
    module = DecodeModule()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
    finish(out, inputs, {n: images[n] for n in DECODE_NAMES})
    return out


BYTES_NAMES = ["jpeg_420", "jpeg_444", "jpeg_progressive", "jpeg_gray", "jpeg_restart",
               "png_rgb", "png_rgba", "png_gray", "png_16", "png_palette", "png_interlaced"]


class ImageBytesClassifier(tf.Module):
    """Model Garden-style image_bytes export: decode in map_fn, resize, normalise, classify."""

    def __init__(self):
        rng = np.random.RandomState(11)
        self.conv = tf.Variable(rng.randn(3, 3, 3, 8).astype(np.float32) * 0.2)
        self.dense = tf.Variable(rng.randn(8, 5).astype(np.float32) * 0.3)
        self.bias = tf.Variable(rng.randn(5).astype(np.float32) * 0.1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(self, image_bytes):
        def decode(b):
            img = tf.io.decode_image(b, channels=3, expand_animations=False)
            img.set_shape([None, None, 3])
            img = tf.image.resize(img, [16, 16])
            return img

        pixels = tf.map_fn(decode, image_bytes, fn_output_signature=tf.float32)
        x = (pixels - 127.5) / 127.5
        x = tf.nn.relu(tf.nn.conv2d(x, self.conv, 2, "SAME"))
        x = tf.reduce_mean(x, axis=[1, 2])
        logits = tf.matmul(x, self.dense) + self.bias
        return {"logits": logits, "probabilities": tf.nn.softmax(logits), "pixels": pixels}


def build_image_bytes():
    out = fresh("image_bytes")
    images = make_images()
    batch = [images[n] for n in BYTES_NAMES]
    module = ImageBytesClassifier()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
    finish(out, {"image_bytes": [{"b64": base64.b64encode(b).decode("ascii")} for b in batch]},
           {"image_bytes": batch})
    write_json(os.path.join(out, "rows.json"), BYTES_NAMES)
    return out



# --------------------------------------------------------------------------
# image_ops
# --------------------------------------------------------------------------


class OpsModule(tf.Module):
    @tf.function(input_signature=[
        tf.TensorSpec([2, 6, 8, 3], tf.float32),
        tf.TensorSpec([2, 4, 6, 8], tf.float32),
        tf.TensorSpec([1, 5, 7, 3], tf.uint8),
    ])
    def serve(self, rgb, feat, img_u8):
        out = {}
        boxes = tf.constant([[0.1, 0.2, 0.8, 0.9], [0.0, 0.0, 1.0, 1.0], [0.9, 0.8, 0.2, 0.1],
                             [-0.2, -0.1, 1.3, 1.2], [0.5, 0.5, 0.5, 0.5]], tf.float32)
        ind = tf.constant([0, 1, 1, 0, 1], tf.int32)
        out["crop_bilinear"] = R.CropAndResize(image=rgb, boxes=boxes, box_ind=ind,
                                               crop_size=[4, 5])
        out["crop_nearest"] = R.CropAndResize(image=rgb, boxes=boxes, box_ind=ind,
                                              crop_size=[3, 3], method="nearest",
                                              extrapolation_value=-1.0)
        out["crop_1x1"] = R.CropAndResize(image=rgb, boxes=boxes, box_ind=ind, crop_size=[1, 1])
        out["crop_u8"] = R.CropAndResize(image=img_u8, boxes=boxes[:2], box_ind=[0, 0],
                                         crop_size=[6, 2], extrapolation_value=7.5)
        out["crop_empty"] = R.CropAndResize(image=rgb, boxes=tf.zeros([0, 4]),
                                            box_ind=tf.zeros([0], tf.int32), crop_size=[2, 2])
        for k, s, r, p in (([1, 2, 2, 1], [1, 2, 2, 1], [1, 1, 1, 1], "VALID"),
                           ([1, 3, 2, 1], [1, 2, 3, 1], [1, 1, 1, 1], "SAME"),
                           ([1, 2, 2, 1], [1, 1, 1, 1], [1, 2, 2, 1], "SAME")):
            name = "patches_" + "".join(map(str, k[1:3] + s[1:3] + r[1:3])) + "_" + p.lower()
            out[name] = tf.image.extract_patches(rgb, k, s, r, p)
        unit = tf.clip_by_value(rgb / 255.0, 0.0, 1.0)
        hsv = tf.image.rgb_to_hsv(unit)
        out["rgb_to_hsv"] = hsv
        out["hsv_to_rgb"] = tf.image.hsv_to_rgb(hsv)
        out["hsv_to_rgb_raw"] = tf.image.hsv_to_rgb(tf.clip_by_value(feat[..., :3] * 0.5 + 0.5,
                                                                     0.0, 1.0))
        out["contrast"] = tf.image.adjust_contrast(rgb, 1.7)
        out["contrast_low"] = tf.image.adjust_contrast(feat, 0.3)
        out["saturation"] = tf.image.adjust_saturation(unit, 1.6)
        out["saturation_zero"] = tf.image.adjust_saturation(unit, 0.0)
        out["hue"] = tf.image.adjust_hue(unit, 0.2)
        out["hue_neg"] = tf.image.adjust_hue(unit, -0.45)
        out["space_to_depth"] = tf.nn.space_to_depth(feat, 2)
        out["depth_to_space"] = tf.nn.depth_to_space(feat, 2)
        out["space_to_depth_u8"] = tf.nn.space_to_depth(tf.concat([img_u8[:, :4, :6]] * 2, 0), 2)
        rng = np.random.RandomState(5)
        for name, (k, st, pad, osz) in {
            "deconv_s2_same": ((3, 3), 2, "SAME", [2, 8, 12, 5]),
            "deconv_s2_valid": ((3, 3), 2, "VALID", [2, 9, 13, 5]),
            "deconv_s1_same": ((3, 2), 1, "SAME", [2, 4, 6, 5]),
            "deconv_s3_valid_k2": ((2, 2), 3, "VALID", [2, 12, 17, 5]),
        }.items():
            w = tf.constant(rng.randn(k[0], k[1], 5, 8).astype(np.float32))
            out[name] = tf.nn.conv2d_transpose(feat, w, osz, st, pad)
        w = tf.constant(rng.randn(2, 3, 5, 8).astype(np.float32))
        out["deconv_explicit"] = R.Conv2DBackpropInput(
            input_sizes=[2, 7, 9, 5], filter=w, out_backprop=feat, strides=[1, 2, 2, 1],
            padding="EXPLICIT", explicit_paddings=[0, 0, 1, 0, 2, 2, 0, 0])
        out["lrn"] = tf.nn.local_response_normalization(feat, 2, 1.0, 0.1, 0.5)
        out["lrn_beta075"] = tf.nn.local_response_normalization(feat, 5, 2.0, 1e-3, 0.75)
        out["lrn_beta1"] = tf.nn.local_response_normalization(feat, 1, 0.5, 0.2, 1.0)
        out["mirror_reflect"] = tf.pad(rgb, [[0, 0], [2, 1], [1, 3], [0, 0]], "REFLECT")
        out["mirror_symmetric"] = tf.pad(img_u8, [[0, 0], [3, 0], [0, 2], [1, 1]], "SYMMETRIC")
        return out


def build_image_ops():
    out = fresh("image_ops")
    rng = np.random.RandomState(9)
    rgb = (rng.rand(2, 6, 8, 3) * 255).astype(np.float32)
    feat = rng.randn(2, 4, 6, 8).astype(np.float32)
    img_u8 = rng.randint(0, 256, size=(1, 5, 7, 3)).astype(np.uint8)
    return save_module(OpsModule(), out, {"rgb": rgb.tolist(), "feat": feat.tolist(),
                                          "img_u8": img_u8.tolist()})


BUILDERS = {
    "image_resize": build_image_resize,
    "image_decode": build_image_decode,
    "image_bytes": build_image_bytes,
    "image_ops": build_image_ops,
}


def main(argv):
    tf.config.experimental.enable_op_determinism()
    mf.run_builders(BUILDERS, argv[1:], f"TensorFlow {tf.__version__}")


if __name__ == "__main__":
    main(sys.argv)
