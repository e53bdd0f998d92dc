//! The emoji data set (data card, section 3), built from npm packages that
//! `scripts/fetch-emoji.sh` unpacks into [`super::emoji_dir`]: `emoji-datasource-{google,twitter,
//! facebook}@16.0.0` (metadata `emoji.json`, 64 px PNGs) and `emojilib@4.0.3` (keywords).
//!
//! - Items: the 1,911 base emoji of `emoji.json` (skin-tone variants live inside their base entry
//!   and are not items), in `sort_order`.
//! - Text: name + short names + emojilib keywords (looked up by the emoji's characters, fully
//!   qualified first), joined by spaces; the text pipeline tokenises it.
//! - Labels: category (10) or subcategory (99), numbered in order of first appearance by `sort_order`.
//! - Split by emoji: test = `sort_order % 5 == 0` (382), train = the other 1,529.
//! - Protocol (unseen vendor): train on google + twitter images of the training emoji with their
//!   texts (3,058 pairs); image->text: facebook images of the test emoji (371) against the texts
//!   of the training emoji (1,529); text->image: texts of the test emoji (382) against the facebook
//!   images of the training emoji (1,489).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Benchmark, DataError, ImageInput, Labels, PairedData, TextInput};

pub const PACKAGE_VERSION: &str = "16.0.0";
pub const EMOJILIB_VERSION: &str = "4.0.3";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    Google,
    Twitter,
    Facebook,
}

impl Vendor {
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Google => "google",
            Vendor::Twitter => "twitter",
            Vendor::Facebook => "facebook",
        }
    }
}

/// Which annotation is the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelLevel {
    Category,
    Subcategory,
}

/// The fields of an `emoji.json` entry that the data set uses.
#[derive(Debug, Clone, Deserialize)]
struct RawEntry {
    name: Option<String>,
    unified: String,
    non_qualified: Option<String>,
    image: String,
    short_names: Vec<String>,
    category: String,
    subcategory: String,
    sort_order: u32,
    #[serde(default)]
    has_img_google: bool,
    #[serde(default)]
    has_img_twitter: bool,
    #[serde(default)]
    has_img_facebook: bool,
}

/// One base emoji.
#[derive(Debug, Clone, PartialEq)]
pub struct Emoji {
    pub name: String,
    /// Code points, e.g. "1F600" or "0023-FE0F-20E3".
    pub unified: String,
    pub short_names: Vec<String>,
    /// emojilib keywords (empty for the 5 skin-tone swatches, which emojilib lacks).
    pub keywords: Vec<String>,
    pub category: u32,
    pub subcategory: u32,
    pub sort_order: u32,
    /// PNG file name inside `img/<vendor>/64/`.
    pub image: String,
    has_img: [bool; 3],
}

impl Emoji {
    /// The item's text: name, short names and keywords, space-separated.
    pub fn text(&self) -> String {
        let mut parts = vec![self.name.as_str()];
        parts.extend(self.short_names.iter().map(String::as_str));
        parts.extend(self.keywords.iter().map(String::as_str));
        parts.join(" ")
    }

    pub fn has_image(&self, vendor: Vendor) -> bool {
        self.has_img[vendor as usize]
    }

    /// In the test split (`sort_order % 5 == 0`).
    pub fn is_test(&self) -> bool {
        self.sort_order.is_multiple_of(5)
    }
}

/// The loaded emoji set.
#[derive(Debug, Clone, PartialEq)]
pub struct EmojiSet {
    pub dir: PathBuf,
    /// In `sort_order`.
    pub items: Vec<Emoji>,
    pub categories: Vec<String>,
    pub subcategories: Vec<String>,
}

/// One retrieval direction whose query and retrieval sets are not paired.
#[derive(Debug, Clone, PartialEq)]
pub struct Direction<Q, R> {
    pub query: Q,
    pub query_labels: Labels,
    pub retrieval: R,
    pub retrieval_labels: Labels,
}

/// The exact protocol of the data card: training pairs, and each direction with its own sets.
#[derive(Debug, Clone, PartialEq)]
pub struct EmojiProtocol {
    pub train: PairedData,
    pub image_to_text: Direction<ImageInput, TextInput>,
    pub text_to_image: Direction<TextInput, ImageInput>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| DataError::parse(path, e.line(), e.to_string()))
}

/// "0023-FE0F-20E3" -> "#\u{FE0F}\u{20E3}"; None for a malformed code point.
fn chars_of(unified: &str) -> Option<String> {
    unified.split('-').map(|h| u32::from_str_radix(h, 16).ok().and_then(char::from_u32)).collect()
}

/// Reads the packages from `dir` (see [`super::emoji_dir`]). Metadata comes from the google
/// package; the three packages of one version carry the same `emoji.json`.
pub fn load(dir: &Path) -> Result<EmojiSet, DataError> {
    let meta = dir.join("emoji-datasource-google").join("emoji.json");
    let mut raw: Vec<RawEntry> = read_json(&meta)?;
    raw.sort_by_key(|e| e.sort_order);
    let lib_path = dir.join("emojilib").join("dist").join("emoji-en-US.json");
    let lib: HashMap<String, Vec<String>> = read_json(&lib_path)?;

    let mut categories: Vec<String> = Vec::new();
    let mut subcategories: Vec<String> = Vec::new();
    let index_of = |names: &mut Vec<String>, s: &str| match names.iter().position(|n| n == s) {
        Some(i) => i as u32,
        None => {
            names.push(s.to_string());
            names.len() as u32 - 1
        }
    };
    let mut items = Vec::with_capacity(raw.len());
    for e in raw {
        let full = chars_of(&e.unified)
            .ok_or_else(|| DataError::invalid(&meta, format!("bad code points {:?}", e.unified)))?;
        // emojilib keys are usually fully qualified; some are stored without the FE0F selector.
        let candidates = [
            Some(full.clone()),
            e.non_qualified.as_deref().and_then(chars_of),
            Some(full.replace('\u{FE0F}', "")),
        ];
        let keywords = candidates.iter().flatten().find_map(|k| lib.get(k)).cloned().unwrap_or_default();
        items.push(Emoji {
            name: e.name.unwrap_or_default(),
            unified: e.unified,
            short_names: e.short_names,
            keywords,
            category: index_of(&mut categories, &e.category),
            subcategory: index_of(&mut subcategories, &e.subcategory),
            sort_order: e.sort_order,
            image: e.image,
            has_img: [e.has_img_google, e.has_img_twitter, e.has_img_facebook],
        });
    }
    Ok(EmojiSet { dir: dir.to_path_buf(), items, categories, subcategories })
}

impl EmojiSet {
    pub fn train_indices(&self) -> Vec<usize> {
        (0..self.items.len()).filter(|&i| !self.items[i].is_test()).collect()
    }

    pub fn test_indices(&self) -> Vec<usize> {
        (0..self.items.len()).filter(|&i| self.items[i].is_test()).collect()
    }

    /// The items of `idx` that have a `vendor` image.
    pub fn with_image(&self, idx: &[usize], vendor: Vendor) -> Vec<usize> {
        idx.iter().copied().filter(|&i| self.items[i].has_image(vendor)).collect()
    }

    pub fn image_path(&self, i: usize, vendor: Vendor) -> PathBuf {
        let v = vendor.name();
        self.dir
            .join(format!("emoji-datasource-{v}"))
            .join("img")
            .join(v)
            .join("64")
            .join(&self.items[i].image)
    }

    /// The PNG bytes of item `i` for `vendor` (an error if that vendor has no image of it).
    pub fn image_bytes(&self, i: usize, vendor: Vendor) -> Result<Vec<u8>, DataError> {
        let path = self.image_path(i, vendor);
        if !self.items[i].has_image(vendor) {
            return Err(DataError::invalid(
                &path,
                format!("{} has no {} image", self.items[i].name, vendor.name()),
            ));
        }
        std::fs::read(&path).map_err(|e| DataError::io(&path, e))
    }

    pub fn images(&self, idx: &[usize], vendor: Vendor) -> Result<ImageInput, DataError> {
        Ok(ImageInput::Encoded(idx.iter().map(|&i| self.image_bytes(i, vendor)).collect::<Result<_, _>>()?))
    }

    pub fn texts(&self, idx: &[usize]) -> TextInput {
        TextInput::Raw(idx.iter().map(|&i| self.items[i].text()).collect())
    }

    pub fn labels(&self, idx: &[usize], level: LabelLevel) -> Labels {
        let (classes, sets) = match level {
            LabelLevel::Category => {
                (self.categories.len(), idx.iter().map(|&i| vec![self.items[i].category]).collect())
            }
            LabelLevel::Subcategory => {
                (self.subcategories.len(), idx.iter().map(|&i| vec![self.items[i].subcategory]).collect())
            }
        };
        Labels { classes, sets }
    }

    /// Training pairs: google images of the training emoji, then twitter images of the same
    /// emoji, each with the emoji's text (3,058 pairs).
    pub fn train_pairs(&self, level: LabelLevel) -> Result<PairedData, DataError> {
        let train = self.train_indices();
        let g = self.with_image(&train, Vendor::Google);
        let t = self.with_image(&train, Vendor::Twitter);
        let (ImageInput::Encoded(mut img), ImageInput::Encoded(tw)) =
            (self.images(&g, Vendor::Google)?, self.images(&t, Vendor::Twitter)?)
        else {
            unreachable!("images() returns encoded images")
        };
        img.extend(tw);
        let both: Vec<usize> = g.iter().chain(&t).copied().collect();
        Ok(PairedData {
            image: ImageInput::Encoded(img),
            text: self.texts(&both),
            labels: Some(self.labels(&both, level)),
        })
    }

    /// The data card's protocol, each direction with its own query and retrieval sets.
    pub fn protocol(&self, level: LabelLevel) -> Result<EmojiProtocol, DataError> {
        let (train, test) = (self.train_indices(), self.test_indices());
        let (train_fb, test_fb) =
            (self.with_image(&train, Vendor::Facebook), self.with_image(&test, Vendor::Facebook));
        Ok(EmojiProtocol {
            train: self.train_pairs(level)?,
            image_to_text: Direction {
                query: self.images(&test_fb, Vendor::Facebook)?,
                query_labels: self.labels(&test_fb, level),
                retrieval: self.texts(&train),
                retrieval_labels: self.labels(&train, level),
            },
            text_to_image: Direction {
                query: self.texts(&test),
                query_labels: self.labels(&test, level),
                retrieval: self.images(&train_fb, Vendor::Facebook)?,
                retrieval_labels: self.labels(&train_fb, level),
            },
        })
    }

    /// The protocol squeezed into the paired [`Benchmark`] contract: queries = test emoji WITH a
    /// facebook image (371), retrieval = training emoji with one (1,489), so text->image uses 371
    /// queries instead of 382 and image->text 1,489 texts instead of 1,529. Use
    /// [`EmojiSet::protocol`] for the data card's exact numbers.
    pub fn benchmark(&self, level: LabelLevel) -> Result<Benchmark, DataError> {
        let pairs = |idx: &[usize]| -> Result<PairedData, DataError> {
            Ok(PairedData {
                image: self.images(idx, Vendor::Facebook)?,
                text: self.texts(idx),
                labels: Some(self.labels(idx, level)),
            })
        };
        let train_fb = self.with_image(&self.train_indices(), Vendor::Facebook);
        let test_fb = self.with_image(&self.test_indices(), Vendor::Facebook);
        Ok(Benchmark {
            name: "emoji".into(),
            train: self.train_pairs(level)?,
            query: pairs(&test_fb)?,
            retrieval: pairs(&train_fb)?,
        })
    }
}
