//! Reed-Solomon error correction over GF(256), as QR codes use it: the field is built on the
//! polynomial x⁸ + x⁴ + x³ + x² + 1 (0x11D), and the generator of degree n is the product of
//! (x − αⁱ) for i in 0..n, with α = 2. The error correction codewords of a block are the
//! remainder of the block (times xⁿ) divided by the generator.
//!
//! Products are computed bit by bit rather than from log tables: a link's code needs a few
//! thousand of them, and 512 bytes of tables would cost more flash than the time they save.

/// The low byte of the field's polynomial (its x⁸ term is the carry out of a byte).
const REDUCTION: u8 = 0x1D;

/// The product of two field elements.
pub fn multiply(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0;
    while b != 0 {
        if b & 1 != 0 {
            product ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= REDUCTION;
        }
        b >>= 1;
    }
    product
}

/// The generator polynomial of `degree`, highest power first, without its leading 1.
fn generator(degree: usize) -> Vec<u8> {
    // Coefficients highest power first, with the leading 1.
    let mut poly = vec![1u8];
    let mut root = 1u8; // α⁰
    for _ in 0..degree {
        // poly · (x + root): shift up one power, add root · poly.
        let mut next = poly.clone();
        next.push(0);
        for (index, &coefficient) in poly.iter().enumerate() {
            next[index + 1] ^= multiply(coefficient, root);
        }
        poly = next;
        root = multiply(root, 2);
    }
    poly.remove(0);
    poly
}

/// The `degree` error correction codewords of `data`.
pub fn remainder(data: &[u8], degree: usize) -> Vec<u8> {
    let generator = generator(degree);
    let mut rest = vec![0u8; degree];
    for &byte in data {
        let factor = byte ^ rest[0];
        rest.remove(0);
        rest.push(0);
        for (slot, &coefficient) in rest.iter_mut().zip(&generator) {
            *slot ^= multiply(coefficient, factor);
        }
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_wraps_at_its_polynomial() {
        assert_eq!(multiply(0x80, 2), 0x1D);
        assert_eq!(multiply(0, 0x53), 0);
        assert_eq!(multiply(1, 0x53), 0x53);
        // α²⁵⁵ = 1: the powers of 2 run through all 255 non-zero elements.
        let mut power = 1u8;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..255 {
            assert!(seen.insert(power));
            power = multiply(power, 2);
        }
        assert_eq!(power, 1);
    }

    #[test]
    fn generator_of_degree_7_is_the_standards() {
        // ISO/IEC 18004 Annex A, 7 error correction codewords: exponents of α
        // x⁷ + α⁸⁷x⁶ + α²²⁹x⁵ + α¹⁴⁶x⁴ + α¹⁴⁹x³ + α²³⁸x² + α¹⁰²x + α²¹.
        let alpha = |exponent: u32| (0..exponent).fold(1u8, |value, _| multiply(value, 2));
        let expected: Vec<u8> = [87, 229, 146, 149, 238, 102, 21]
            .iter()
            .map(|&e| alpha(e))
            .collect();
        assert_eq!(generator(7), expected);
    }

    #[test]
    fn worked_example_of_the_standard() {
        // ISO/IEC 18004 Annex I: "01234567" as version 1-M; 16 data codewords, 10 for error
        // correction.
        let data = [
            0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11,
            0xEC, 0x11,
        ];
        assert_eq!(
            remainder(&data, 10),
            [0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55]
        );
    }
}
