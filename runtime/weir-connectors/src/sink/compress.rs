//! Object compression, as Firehose offers it: GZIP, ZIP (one entry), Snappy (the framing
//! format) and HADOOP_SNAPPY (Hadoop's block framing: per block a 4-byte big-endian
//! uncompressed length, a 4-byte big-endian compressed length, and the raw Snappy block).

use std::io::Write;

use crate::config::Compression;

/// Hadoop's default block size for its Snappy codec.
const HADOOP_BLOCK: usize = 256 * 1024;

impl Compression {
    /// The object name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zip => ".zip",
            Compression::Snappy | Compression::HadoopSnappy => ".snappy",
        }
    }

    /// The `Content-Encoding` to store with an object, where HTTP has one.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Compression::Gzip => Some("gzip"),
            _ => None,
        }
    }
}

/// Compresses a whole object; `entry` names the one file inside a ZIP archive.
pub fn compress(body: &[u8], compression: Compression, entry: &str) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(body.to_vec()),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::default(),
            );
            gz.write_all(body)?;
            gz.finish()
        }
        Compression::Zip => {
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(body.len() as u64 >= u32::MAX as u64);
            zip.start_file(entry, options)
                .map_err(std::io::Error::other)?;
            zip.write_all(body)?;
            Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
        }
        Compression::Snappy => {
            let mut w = snap::write::FrameEncoder::new(Vec::with_capacity(body.len() / 2));
            w.write_all(body)?;
            w.into_inner()
                .map_err(|e| std::io::Error::other(e.to_string()))
        }
        Compression::HadoopSnappy => {
            let mut out = Vec::with_capacity(body.len() / 2);
            let mut encoder = snap::raw::Encoder::new();
            for block in body.chunks(HADOOP_BLOCK) {
                let compressed = encoder
                    .compress_vec(block)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            Ok(out)
        }
    }
}

/// Undoes [`compress`]; for tests and `weir` tools that read objects back.
pub fn decompress(data: &[u8], compression: Compression) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    match compression {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
        }
        Compression::Zip => {
            let mut archive =
                zip::ZipArchive::new(std::io::Cursor::new(data)).map_err(std::io::Error::other)?;
            for i in 0..archive.len() {
                archive
                    .by_index(i)
                    .map_err(std::io::Error::other)?
                    .read_to_end(&mut out)?;
            }
        }
        Compression::Snappy => {
            snap::read::FrameDecoder::new(data).read_to_end(&mut out)?;
        }
        Compression::HadoopSnappy => {
            let mut rest = data;
            let mut decoder = snap::raw::Decoder::new();
            while !rest.is_empty() {
                let bad = || {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "truncated hadoop-snappy block",
                    )
                };
                if rest.len() < 8 {
                    return Err(bad());
                }
                let raw_len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                let len = u32::from_be_bytes(rest[4..8].try_into().unwrap()) as usize;
                let block = rest.get(8..8 + len).ok_or_else(bad)?;
                let plain = decoder
                    .decompress_vec(block)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                if plain.len() != raw_len {
                    return Err(bad());
                }
                out.extend_from_slice(&plain);
                rest = &rest[8 + len..];
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compression_round_trips_byte_for_byte() {
        // Over one Hadoop block, so that the block framing is exercised.
        let body: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Zip,
            Compression::Snappy,
            Compression::HadoopSnappy,
        ] {
            let packed = compress(&body, c, "records").unwrap();
            if c != Compression::None {
                assert!(packed.len() < body.len() / 2, "{c:?} compresses");
            }
            assert_eq!(decompress(&packed, c).unwrap(), body, "{c:?}");
        }
        // The Snappy framing format starts with its stream identifier chunk.
        let framed = compress(b"x", Compression::Snappy, "").unwrap();
        assert_eq!(&framed[..10], b"\xff\x06\x00\x00sNaPpY");
        // Hadoop framing: lengths, big-endian.
        let hadoop = compress(b"hello hello hello", Compression::HadoopSnappy, "").unwrap();
        assert_eq!(&hadoop[..4], &17u32.to_be_bytes());
        assert_eq!(
            u32::from_be_bytes(hadoop[4..8].try_into().unwrap()) as usize,
            hadoop.len() - 8
        );
    }
}
