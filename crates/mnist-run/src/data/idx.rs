//! The IDX files of MNIST, plain or gzipped.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::images::{Images, SIDE};
use crate::error::Error;

/// The canonical MNIST file names.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// The canonical MNIST file names.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// The canonical MNIST file names.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// The canonical MNIST file names.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// `dir/name`, else `dir/name.gz`, if either exists.
pub(super) fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    [plain, gz].into_iter().find(|p| p.is_file())
}

/// The images and labels of one split, checked against each other.
pub(super) fn read_split(dir: &Path, images: &str, labels: &str) -> Result<Images, Error> {
    let (image_path, pixels, [n, rows, cols]) = read_idx::<3>(dir, images, 0x0000_0803)?;
    if rows != SIDE || cols != SIDE {
        return Err(Error::file(
            &image_path,
            format!("expected 28 x 28 images, got {rows} x {cols}"),
        ));
    }
    let (label_path, labels, [n_labels]) = read_idx::<1>(dir, labels, 0x0000_0801)?;
    if n_labels != n {
        return Err(Error::file(
            &label_path,
            format!(
                "{n_labels} labels for {n} images in {}",
                image_path.display()
            ),
        ));
    }
    if let Some(bad) = labels.iter().find(|&&l| l > 9) {
        return Err(Error::file(
            &label_path,
            format!("label {bad} is not a digit"),
        ));
    }
    Ok(Images { pixels, labels })
}

/// Reads an IDX file of unsigned bytes with `D` dimensions: `(path, payload, dims)`.
fn read_idx<const D: usize>(
    dir: &Path,
    name: &str,
    magic: u32,
) -> Result<(PathBuf, Vec<u8>, [usize; D]), Error> {
    let path = find(dir, name).ok_or_else(|| {
        let plain = dir.join(name);
        match plain.is_dir() {
            true => Error::file(&plain, "is a folder, not an IDX file"),
            false => Error::file(
                &plain,
                format!("missing (also tried {name}.gz); see scripts/fetch-mnist.sh"),
            ),
        }
    })?;
    let mut bytes = Vec::new();
    let read = File::open(&path).and_then(|mut file| {
        if path.extension().is_some_and(|e| e == "gz") {
            GzDecoder::new(file).read_to_end(&mut bytes)
        } else {
            file.read_to_end(&mut bytes)
        }
    });
    read.map_err(|e| Error::file(&path, e.to_string()))?;
    let (dims, payload) = parse_idx::<D>(&bytes, magic).map_err(|m| Error::file(&path, m))?;
    Ok((path, payload.to_vec(), dims))
}

/// Parses an IDX byte buffer: big-endian magic `0x0000_08_0D` (unsigned bytes, D dimensions),
/// D big-endian u32 sizes, then the payload.
pub fn parse_idx<const D: usize>(bytes: &[u8], magic: u32) -> Result<([usize; D], &[u8]), String> {
    let header = 4 + 4 * D;
    if bytes.len() < header {
        return Err(format!(
            "truncated: {} bytes, shorter than the {header}-byte header",
            bytes.len()
        ));
    }
    let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    if word(0) != magic {
        return Err(format!(
            "wrong magic number 0x{:08x}, expected 0x{magic:08x}",
            word(0)
        ));
    }
    let mut dims = [0usize; D];
    for (d, dim) in dims.iter_mut().enumerate() {
        *dim = word(d + 1) as usize;
    }
    // The sizes come from the file: their product is checked, not wrapped (2^31 · 2^31 · 4 would
    // wrap to 0 in 64 bits and pass for an empty payload).
    let expected = dims
        .iter()
        .try_fold(1usize, |product, &dim| product.checked_mul(dim))
        .ok_or_else(|| format!("dimensions {dims:?} hold more bytes than memory can"))?;
    let payload = &bytes[header..];
    if payload.len() != expected {
        return Err(format!(
            "truncated or oversized: {} bytes of data, expected {expected} for dimensions {dims:?}",
            payload.len()
        ));
    }
    Ok((dims, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Mnist, PIXELS};

    fn idx_bytes(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut out = magic.to_be_bytes().to_vec();
        for d in dims {
            out.extend(d.to_be_bytes());
        }
        out.extend(payload);
        out
    }

    #[test]
    fn idx_parsing_checks_magic_and_length() {
        let ok = idx_bytes(0x0801, &[3], &[1, 2, 3]);
        assert_eq!(
            parse_idx::<1>(&ok, 0x0801).unwrap(),
            ([3], &[1u8, 2, 3][..])
        );
        let err = parse_idx::<1>(&ok, 0x0803).unwrap_err();
        assert_eq!(err, "wrong magic number 0x00000801, expected 0x00000803");
        let truncated = idx_bytes(0x0801, &[4], &[1, 2, 3]);
        assert!(
            parse_idx::<1>(&truncated, 0x0801)
                .unwrap_err()
                .starts_with("truncated")
        );
        assert!(
            parse_idx::<1>(&[0, 0], 0x0801)
                .unwrap_err()
                .starts_with("truncated: 2 bytes")
        );
    }

    #[test]
    fn sizes_whose_product_overflows_are_refused() {
        // 2^31 · 2^31 · 4 = 2^64: wrapped, it would be 0 and match an empty payload.
        let hostile = idx_bytes(0x0803, &[1 << 31, 1 << 31, 4], &[]);
        assert_eq!(
            parse_idx::<3>(&hostile, 0x0803).unwrap_err(),
            "dimensions [2147483648, 2147483648, 4] hold more bytes than memory can"
        );
    }

    #[test]
    fn idx_dir_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("bg-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let error = Mnist::from_idx_dir(&dir).unwrap_err().to_string();
        assert!(
            error.contains("train-images-idx3-ubyte: missing"),
            "{error}"
        );

        std::fs::write(
            dir.join(TRAIN_IMAGES),
            idx_bytes(0x0803, &[2, 28, 28], &[0; 100]),
        )
        .unwrap();
        let error = Mnist::from_idx_dir(&dir).unwrap_err().to_string();
        assert!(
            error.contains("train-images-idx3-ubyte: truncated"),
            "{error}"
        );

        std::fs::write(
            dir.join(TRAIN_IMAGES),
            idx_bytes(0x0801, &[2, 28, 28], &[0; 1568]),
        )
        .unwrap();
        let error = Mnist::from_idx_dir(&dir).unwrap_err().to_string();
        assert!(error.contains("wrong magic"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_folder_in_place_of_a_file_is_named_as_such() {
        let dir = std::env::temp_dir().join(format!("vae-idx-folder-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(TRAIN_IMAGES)).unwrap();
        let error = Mnist::from_idx_dir(&dir).unwrap_err().to_string();
        assert!(
            error.ends_with("train-images-idx3-ubyte: is a folder, not an IDX file"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gzipped_idx_files_are_read() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("bg-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write_gz = |name: &str, bytes: Vec<u8>| {
            let file = File::create(dir.join(format!("{name}.gz"))).unwrap();
            let mut gz = GzEncoder::new(file, Compression::fast());
            gz.write_all(&bytes).unwrap();
            gz.finish().unwrap();
        };
        let pixels: Vec<u8> = (0..2 * PIXELS).map(|i| (i % 256) as u8).collect();
        write_gz(TRAIN_IMAGES, idx_bytes(0x0803, &[2, 28, 28], &pixels));
        write_gz(TRAIN_LABELS, idx_bytes(0x0801, &[2], &[4, 2]));
        write_gz(
            TEST_IMAGES,
            idx_bytes(0x0803, &[1, 28, 28], &pixels[..PIXELS]),
        );
        write_gz(TEST_LABELS, idx_bytes(0x0801, &[1], &[5]));
        let mnist = Mnist::from_idx_dir(&dir).unwrap();
        assert_eq!(mnist.train.pixels, pixels);
        assert_eq!(mnist.train.labels, vec![4, 2]);
        assert_eq!(mnist.test.labels, vec![5]);
        assert!(mnist.train.has_grey_levels());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
