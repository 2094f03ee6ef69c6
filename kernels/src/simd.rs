//! Runtime CPU feature selection shared by all kernel families.
//!
//! Every vectorized kernel has three paths: AVX-512 (`avx512f`), AVX2 + FMA, and portable
//! scalar code. [`Isa::best`] picks the fastest one the running CPU supports; the `*_with`
//! entry points that some modules expose take an explicit [`Isa`] so tests and benchmarks can
//! force each path. Forcing a path the CPU lacks silently falls back to a supported one.
//!
//! `TFHUB_NO_AVX512=1` in the environment (read once, at the first dispatch) caps
//! [`Isa::best`] at AVX2+FMA, so benchmarks can measure the 256-bit paths on an AVX-512
//! machine (a VM may hide AVX-512 from users' CPUs).

/// An instruction-set level a kernel can be compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, no `std::arch` (auto-vectorized to the build's baseline only).
    Scalar,
    /// x86-64 AVX2 + FMA (256-bit).
    Avx2,
    /// x86-64 AVX-512 Foundation (512-bit).
    Avx512,
}

impl Isa {
    /// The best level supported by the running CPU (capped at AVX2 by `TFHUB_NO_AVX512=1`).
    #[inline]
    pub fn best() -> Isa {
        static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *BEST.get_or_init(Isa::detect)
    }

    fn detect() -> Isa {
        let no_avx512 =
            std::env::var_os("TFHUB_NO_AVX512").is_some_and(|v| !v.is_empty() && v != "0");
        #[cfg(target_arch = "x86_64")]
        {
            if !no_avx512 && is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        let _ = no_avx512;
        Isa::Scalar
    }

    /// All levels supported by the running CPU, lowest first (always contains `Scalar`).
    pub fn available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|isa| *isa <= Isa::best())
            .collect()
    }

    /// `self` if the CPU supports it, otherwise the best supported level below it.
    #[inline]
    pub fn clamp_supported(self) -> Isa {
        self.min(Isa::best())
    }
}

/// Defines a function `$name` that dispatches at run time to three monomorphic copies of
/// `$body` compiled with AVX-512, AVX2+FMA, or no extra target features, so plain loops in
/// `$body` are auto-vectorized for each level. Also defines `$name_with(isa, ...)`.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident / $name_with:ident $(<$($gen:ident : $bound:path),*>)? ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        #[inline]
        #[allow(dead_code)]
        $vis fn $name $(<$($gen: $bound),*>)? ($($arg: $ty),*) $(-> $ret)? {
            $name_with($crate::simd::Isa::best(), $($arg),*)
        }

        /// Same as the function without `_with`, on an explicitly chosen instruction set
        /// (clamped to what the CPU supports).
        #[allow(clippy::too_many_arguments)]
        $vis fn $name_with $(<$($gen: $bound),*>)? (isa: $crate::simd::Isa, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body $(<$($gen: $bound),*>)? ($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn body_avx512 $(<$($gen: $bound),*>)? ($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn body_avx2 $(<$($gen: $bound),*>)? ($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            match isa.clamp_supported() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `clamp_supported` only returns levels the running CPU supports.
                $crate::simd::Isa::Avx512 => unsafe { body_avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                $crate::simd::Isa::Avx2 => unsafe { body_avx2($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}
pub(crate) use multiversion;
