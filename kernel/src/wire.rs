//! A compact binary form of a [`PriceSet`], so that data parsed once (by the launcher) can
//! be handed to every rank as bytes instead of each rank parsing the CSV again.
//!
//! Little-endian, versioned by a magic; every length is checked on decoding, so a torn or
//! corrupted payload is an error, never a panic:
//!
//! ```text
//! "SWPRICE1" u32 assets
//! per asset: u32 symbol bytes, symbol (UTF-8), u32 rows, i32 days × rows,
//!            u8 has_open, [f64 open × rows], f64 close × rows,
//!            u32 scale, u8 kind (0 i64 / 1 i128 / 2 big), ticks:
//!              i64 × rows | i128 × rows | (u32 bytes, little-endian magnitude) × rows
//! ```

use crate::date::Date;
use crate::decimal::{ExactCloses, Ticks};
use crate::prices::{AssetSeries, PriceSet};
use num_bigint::BigUint;

const MAGIC: &[u8; 8] = b"SWPRICE1";

/// Encodes `set`.
pub fn encode(set: &PriceSet) -> Vec<u8> {
    let rows: usize = set.assets.iter().map(AssetSeries::len).sum();
    let mut out = Vec::with_capacity(16 + rows * 36);
    out.extend_from_slice(MAGIC);
    put_len(&mut out, set.assets.len());
    for asset in &set.assets {
        put_len(&mut out, asset.symbol.len());
        out.extend_from_slice(asset.symbol.as_bytes());
        put_len(&mut out, asset.len());
        for date in &asset.dates {
            out.extend_from_slice(&date.days().to_le_bytes());
        }
        out.push(u8::from(asset.open.is_some()));
        for value in asset.open.iter().flatten().chain(&asset.close) {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&asset.close_exact.scale.to_le_bytes());
        match &asset.close_exact.ticks {
            Ticks::I64(ticks) => {
                out.push(0);
                ticks.iter().for_each(|t| out.extend_from_slice(&t.to_le_bytes()));
            }
            Ticks::I128(ticks) => {
                out.push(1);
                ticks.iter().for_each(|t| out.extend_from_slice(&t.to_le_bytes()));
            }
            Ticks::Big(ticks) => {
                out.push(2);
                for tick in ticks {
                    let bytes = tick.to_bytes_le();
                    put_len(&mut out, bytes.len());
                    out.extend_from_slice(&bytes);
                }
            }
        }
    }
    out
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("price data sizes fit in u32");
    out.extend_from_slice(&len.to_le_bytes());
}

/// Decodes what [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<PriceSet, String> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err("not sweeprun price data (bad magic)".into());
    }
    let count = reader.len()?;
    let mut assets = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let symbol_len = reader.len()?;
        let symbol = std::str::from_utf8(reader.take(symbol_len)?).map_err(|_| "symbol is not UTF-8")?.to_string();
        let rows = reader.len()?;
        let dates = reader.array::<4, _>(rows, |b| Date::from_days(i32::from_le_bytes(b)))?;
        let open = match reader.take(1)?[0] {
            0 => None,
            1 => Some(reader.array::<8, _>(rows, f64::from_le_bytes)?),
            other => return Err(format!("bad open flag {other}")),
        };
        let close = reader.array::<8, _>(rows, f64::from_le_bytes)?;
        let scale = u32::from_le_bytes(reader.fixed()?);
        let ticks = match reader.take(1)?[0] {
            0 => Ticks::I64(reader.array::<8, _>(rows, i64::from_le_bytes)?),
            1 => Ticks::I128(reader.array::<16, _>(rows, i128::from_le_bytes)?),
            2 => Ticks::Big(
                (0..rows)
                    .map(|_| {
                        let len = reader.len()?;
                        Ok(BigUint::from_bytes_le(reader.take(len)?))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            other => return Err(format!("bad tick kind {other}")),
        };
        assets.push(AssetSeries { symbol, dates, open, close, close_exact: ExactCloses { scale, ticks } });
    }
    if reader.at != bytes.len() {
        return Err(format!("{} bytes after the price data", bytes.len() - reader.at));
    }
    Ok(PriceSet { assets })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len()).ok_or("price data is cut short")?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn len(&mut self) -> Result<usize, String> {
        Ok(u32::from_le_bytes(self.fixed()?) as usize)
    }

    fn array<const N: usize, T>(&mut self, count: usize, convert: fn([u8; N]) -> T) -> Result<Vec<T>, String> {
        let bytes = self.take(count.checked_mul(N).ok_or("price data is cut short")?)?;
        Ok(bytes.chunks_exact(N).map(|chunk| convert(chunk.try_into().expect("chunks of N bytes"))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prices::parse_csv;

    #[test]
    fn round_trips_every_kind_of_series_and_refuses_damage() {
        let ohlc = parse_csv("a.csv", "A", "Date,Open,Close\n2020-01-02,1.5,2.25\n2020-01-03,2,2.5\n").unwrap();
        let text = "date,X,Y,Z\n2020-01-02,1.5,900000.1234567890123,1e-300\n2020-01-03,2,900000.1,2\n";
        let wide = parse_csv("w.csv", "w", text).unwrap();
        for set in [ohlc, wide] {
            let bytes = encode(&set);
            assert_eq!(decode(&bytes).unwrap(), set);
            for cut in [0, 7, 12, bytes.len() / 2, bytes.len() - 1] {
                assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode(&longer).is_err());
        }
        let kinds: Vec<u8> = {
            let text = "date,X,Y,Z\n2020-01-02,1.5,900000.1234567890123,1e-300\n2020-01-03,2,900000.1,2\n";
            let wide = parse_csv("w.csv", "w", text).unwrap();
            wide.assets
                .iter()
                .map(|a| match a.close_exact.ticks {
                    Ticks::I64(_) => 0,
                    Ticks::I128(_) => 1,
                    Ticks::Big(_) => 2,
                })
                .collect()
        };
        assert_eq!(kinds, vec![0, 1, 2], "the wide file's columns each take their own width");
    }
}
