//! Encodes raw samples with tfhub's JPEG encoder, for `tools/jpeg_encode_sweep.py` (which
//! compares the bytes with TF's `EncodeJpeg`):
//!
//! `jpeg_encode_dump IN.raw OUT.jpg HEIGHT WIDTH CHANNELS QUALITY CHROMA(0/1) OPTIMIZE(0/1) PROGRESSIVE(0/1)`
//!
//! Exits 2 on an encode error.
use tfhub_kernels::image::jpeg::{encode, EncodeOptions};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 10 {
        eprintln!("usage: jpeg_encode_dump IN OUT H W C QUALITY CHROMA OPTIMIZE PROGRESSIVE");
        std::process::exit(1);
    }
    let n = |i: usize| a[i].parse::<usize>().expect("a number");
    let opts = EncodeOptions {
        quality: n(6) as u8,
        chroma_downsampling: n(7) == 1,
        optimize_coding: n(8) == 1,
        progressive: n(9) == 1,
        // TF's CompressFlags defaults.
        density_unit: 1,
        x_density: 300,
        y_density: 300,
        xmp: Vec::new(),
    };
    let px = std::fs::read(&a[1]).expect("input file");
    match encode(&px, n(4), n(3), n(5), &opts) {
        Ok(bytes) => std::fs::write(&a[2], bytes).expect("output file"),
        Err(e) => {
            eprintln!("ERR {e}");
            std::process::exit(2);
        }
    }
}
