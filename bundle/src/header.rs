//! Decoding and checking one 512-byte tar header block of a bundle archive.
//!
//! A header must carry a valid checksum and ustar or GNU magic, describe a regular file or a
//! directory, and name a path that follows the path rules of `crate::path`, with no text hidden
//! behind an embedded NUL. Every other entry type, PAX and GNU extension headers included, is
//! rejected here.

use tar::{EntryType, Header};

use crate::error::{BundleError, malformed, printable, rejected};
use crate::path::check_path;

/// Size of a tar block, in bytes.
pub(crate) const BLOCK: usize = 512;

/// Renders a header path for messages, even when it is not valid UTF-8.
fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).escape_debug().to_string()
}

/// Checks that a NUL-terminated header field contains only NUL bytes after its terminator, so
/// no text hides behind an embedded NUL.
fn check_nul_tail(field: &[u8]) -> bool {
    match field.iter().position(|b| *b == 0) {
        Some(end) => field
            .get(end..)
            .is_some_and(|tail| tail.iter().all(|b| *b == 0)),
        None => true,
    }
}

/// Describes an entry type that a reader rejects.
fn rejected_type(header: &Header) -> Option<String> {
    let kind = header.entry_type();
    let why = match kind {
        EntryType::Regular | EntryType::Directory => return None,
        EntryType::Symlink => {
            let target = header
                .link_name_bytes()
                .map(|t| shown(&t))
                .unwrap_or_default();
            format!(
                "symbolic link to {target:?} rejected, because only regular files and directories are allowed"
            )
        }
        EntryType::Link => {
            let target = header
                .link_name_bytes()
                .map(|t| shown(&t))
                .unwrap_or_default();
            format!(
                "hard link to {target:?} rejected, because only regular files and directories are allowed"
            )
        }
        EntryType::Char => {
            "character device rejected, because only regular files and directories are allowed"
                .into()
        }
        EntryType::Block => {
            "block device rejected, because only regular files and directories are allowed".into()
        }
        EntryType::Fifo => {
            "FIFO rejected, because only regular files and directories are allowed".into()
        }
        EntryType::XHeader
        | EntryType::XGlobalHeader
        | EntryType::GNULongName
        | EntryType::GNULongLink => {
            "PAX or GNU extension header rejected, because v1 archives use plain ustar headers only"
                .into()
        }
        other => format!(
            "entry type {:?} rejected, because only regular files and directories are allowed",
            char::from(other.as_byte())
        ),
    };
    Some(why)
}

/// Verifies the header checksum: the unsigned sum of all header bytes with the checksum field
/// read as eight spaces. The field holds octal digits, ended by a NUL or space.
fn checksum_ok(block: &[u8; BLOCK], header: &Header) -> Result<bool, String> {
    let field = &header.as_old().cksum;
    let digits_end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    let digits = field.get(..digits_end).unwrap_or(field).trim_ascii();
    let stored = std::str::from_utf8(digits)
        .ok()
        .filter(|text| !text.is_empty() && text.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .and_then(|text| u32::from_str_radix(text, 8).ok())
        .ok_or_else(|| {
            format!(
                "invalid tar header checksum field {:?}: expected octal digits",
                String::from_utf8_lossy(field)
            )
        })?;
    let mut sum: u32 = 0;
    for (position, byte) in block.iter().enumerate() {
        let value = if (148..156).contains(&position) {
            b' '
        } else {
            *byte
        };
        sum = sum.saturating_add(u32::from(value));
    }
    Ok(sum == stored)
}

/// One decoded tar header.
pub(crate) enum Item {
    File { path: String, size: u64 },
    Directory { path: String },
}

/// Decodes and checks one non-zero header block.
pub(crate) fn decode_header(archive: &str, block: &[u8; BLOCK]) -> Result<Item, BundleError> {
    let header = Header::from_byte_slice(block);
    let raw_path = header.path_bytes();
    let display = shown(&raw_path);

    match checksum_ok(block, header) {
        Ok(true) => {}
        Ok(false) => return Err(malformed(archive, &display, "tar header checksum mismatch")),
        Err(why) => return Err(malformed(archive, &display, why)),
    }
    if header.as_ustar().is_none() && header.as_gnu().is_none() {
        return Err(malformed(
            archive,
            &display,
            "tar header has neither ustar nor GNU magic",
        ));
    }
    if let Some(why) = rejected_type(header) {
        return Err(rejected(archive, &display, why));
    }

    let old = header.as_old();
    let prefix_clean = header
        .as_ustar()
        .is_none_or(|ustar| check_nul_tail(&ustar.prefix));
    if !check_nul_tail(&old.name) || !prefix_clean {
        return Err(rejected(archive, &display, "path contains a NUL byte"));
    }
    let text = std::str::from_utf8(&raw_path)
        .map_err(|_| rejected(archive, &display, "path is not valid UTF-8"))?;

    let size = header.entry_size().map_err(|e| {
        malformed(
            archive,
            &display,
            format!(
                "invalid size field in tar header: {}",
                printable(&e.to_string())
            ),
        )
    })?;

    if header.entry_type() == EntryType::Directory {
        let path = text.strip_suffix('/').unwrap_or(text);
        check_path(path).map_err(|why| rejected(archive, &display, why))?;
        if size != 0 {
            return Err(malformed(
                archive,
                &display,
                format!("directory entry with size {size}"),
            ));
        }
        return Ok(Item::Directory {
            path: path.to_owned(),
        });
    }
    check_path(text).map_err(|why| rejected(archive, &display, why))?;
    Ok(Item::File {
        path: text.to_owned(),
        size,
    })
}
