//! One kernel-name shortener for every tool, so a kernel has one name in trace tables,
//! layer pipelines and ncu digests.
//!
//! The rule: drop `void ` and `(anonymous namespace)::`, keep the namespaces of the outer
//! name, collapse template arguments to `<…>`, cut at the parameter list; for a generic
//! wrapper (CUTLASS `device_kernel`, PyTorch `elementwise_kernel`/`reduce_kernel`, …)
//! name the first informative functor or kernel identifier inside the template instead;
//! at most 80 characters.

use regex::Regex;
use std::sync::OnceLock;

/// A short display form: no `void `, namespaces of the outer name kept, template
/// arguments collapsed to `<…>`, capped at 80 characters.
pub fn short(canonical: &str) -> String {
    let cleaned = canonical.replace("(anonymous namespace)::", "");
    let s = cleaned.strip_prefix("void ").unwrap_or(&cleaned);
    let mut out = String::new();
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '<' => {
                if depth == 0 {
                    out.push_str("<…>");
                }
                depth += 1;
            }
            '>' => depth -= 1,
            '(' if depth == 0 && !out.is_empty() => break,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let out = out.trim().to_string();
    // Generic wrappers (CUTLASS device_kernel, PyTorch elementwise/reduce kernels): the
    // informative part is the first functor/kernel identifier inside the template.
    let generic = [
        "device_kernel",
        "elementwise_kernel",
        "reduce_kernel",
        "Kernel2",
    ];
    let mut out = if s.contains('<')
        && generic
            .iter()
            .any(|g| out.trim_end_matches("<…>").ends_with(g))
    {
        static INNER: OnceLock<Regex> = OnceLock::new();
        let re = INNER.get_or_init(|| {
            Regex::new(r"([A-Za-z_][A-Za-z0-9_]*(Functor[A-Za-z_]*|_kernel_cuda|_kernel_impl|_kernel|Ops|Sm90|Sm80|Combine|_align[0-9]+|CatArrayBatchedCopy[A-Za-z_]*))").unwrap()
        });
        let outer = out.trim_end_matches("<…>").to_string();
        let inner_text = s.split_once('<').map(|x| x.1).unwrap_or("");
        const WRAPPERS: &[&str] = &[
            "enable_sm90_or_later",
            "gpu_kernel_impl",
            "gpu_kernel_impl_nocast",
            "BinaryFunctor",
            "AUnaryFunctor",
            "BUnaryFunctor",
            "gpu_index_kernel",
        ];
        match re
            .find_iter(inner_text)
            .map(|m| m.as_str())
            .find(|m| !outer.ends_with(m) && !WRAPPERS.contains(m))
        {
            Some(inner) => format!("{}<{inner}…>", outer.trim_end_matches("::")),
            None => out,
        }
    } else {
        out
    };
    if out.chars().count() > 80 {
        out = out.chars().take(77).collect::<String>() + "...";
    }
    if out.is_empty() {
        canonical.chars().take(80).collect()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_keep_the_informative_part() {
        let fa3 = "void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90<flash::CollectiveMainloopFwdSm90<2> > > >";
        assert_eq!(short(fa3), "cutlass::device_kernel<FlashAttnFwdSm90…>");
        let cat = "void at::native::(anonymous namespace)::CatArrayBatchedCopy_vectorized<at::native::(anonymous namespace)::OpaqueType<2u>, unsigned int, 3>";
        assert_eq!(short(cat), "at::native::CatArrayBatchedCopy_vectorized<…>");
        let mul = "void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<at::native::BinaryFunctor<c10::BFloat16, c10::BFloat16, c10::BFloat16, at::native::binary_internal::MulFunctor<float> > >";
        assert_eq!(short(mul), "at::native::elementwise_kernel<MulFunctor…>");
        assert_eq!(
            short("void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16>"),
            "vllm::reshape_and_cache_flash_kernel<…>"
        );
    }

    #[test]
    fn raw_names_with_parameter_lists_and_lambdas_shorten_too() {
        assert_eq!(
            short("void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16>(int*, long)"),
            "vllm::reshape_and_cache_flash_kernel<…>"
        );
        assert_eq!(
            short("nvjet_sm90_tst_256x64_64x5_4x1_v_bz_TNT"),
            "nvjet_sm90_tst_256x64_64x5_4x1_v_bz_TNT"
        );
        let copy = "void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}>(int)";
        assert_eq!(
            short(copy),
            "at::native::unrolled_elementwise_kernel<direct_copy_kernel_cuda…>"
        );
        assert_eq!(
            short("void flash::fwd<(int)8, 256>(Params)"),
            "flash::fwd<…>"
        );
        assert!(short(&"k".repeat(200)).chars().count() <= 80);
    }
}
