//! Decodes one JPEG with tfhub's decoder and writes the raw samples, for
//! `tools/jpeg_sweep.py` (which compares them with TF's):
//!
//! `jpeg_dump IN.jpg OUT.raw CHANNELS RATIO FANCY(0/1) ACCURATE(0/1) RECOVER(0/1) [Y X H W]`
//!
//! Prints `height width channels valid ROWS_VALID` on stderr; exits 2 on a decode error.
use tfhub_kernels::image::jpeg::{decode, Crop, Options};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 8 {
        eprintln!("usage: jpeg_dump IN OUT CHANNELS RATIO FANCY ACCURATE RECOVER [Y X H W]");
        std::process::exit(1);
    }
    let n = |i: usize| a[i].parse::<usize>().expect("a number");
    let crop = (a.len() > 11).then(|| Crop {
        y: n(8),
        x: n(9),
        height: n(10),
        width: n(11),
    });
    let o = Options {
        channels: n(3),
        ratio: n(4),
        fancy_upsampling: n(5) == 1,
        accurate_dct: n(6) == 1,
        try_recover_truncated: n(7) == 1,
        crop,
        max_pixels: 1 << 30,
    };
    let data = std::fs::read(&a[1]).expect("input file");
    match decode(&data, &o) {
        Ok(d) => {
            eprintln!(
                "{} {} {} valid {}",
                d.height, d.width, d.channels, d.rows_valid
            );
            std::fs::write(&a[2], &d.pixels).expect("output file");
        }
        Err(e) => {
            eprintln!("ERR {e}");
            std::process::exit(2);
        }
    }
}
