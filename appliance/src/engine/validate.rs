//! Validation and risk checks of new orders and replaces, in the precedence `docs/engine.md`
//! documents (the first failing check is the answer). Hot path: integer compares, one id-index
//! probe, and a level lookup only when the book side has no free level.

use super::command::{NewOrder, Replace};
use super::orders::OrderSlot;
use super::process::Engine;
use super::reason::RejectReason;
use super::types::{OrdType, Price};

impl Engine {
    /// Risk and sanity checks for a new order, in the documented precedence.
    #[inline]
    pub(super) fn check_new(&self, b: usize, o: &NewOrder) -> Result<(), RejectReason> {
        let book = &self.books[b];
        if self.index.get(o.order_id).is_some() {
            return Err(RejectReason::DuplicateOrderId);
        }
        if o.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        // Division is the slowest instruction on this path; unit lots and ticks skip it.
        if book.lot != 1 && o.qty % book.lot != 0 {
            return Err(RejectReason::OffLot);
        }
        if o.qty > book.max_qty {
            return Err(RejectReason::QuantityOverMax);
        }
        let limit = o.ord_type == OrdType::Limit;
        if limit {
            if o.price <= 0 {
                return Err(RejectReason::InvalidPrice);
            }
            if book.tick != 1 && o.price % book.tick != 0 {
                return Err(RejectReason::OffTick);
            }
            if !book.in_band(o.price) {
                return Err(RejectReason::OutsidePriceBand);
            }
        }
        // Market orders are valued at the opposite best (where they start trading); with an
        // empty opposite side they cannot trade at all.
        let notional_price = if limit {
            Some(o.price)
        } else {
            book.opposite_best(o.side)
        };
        if let Some(p) = notional_price {
            if (p as u128) * (o.qty as u128) > book.max_notional {
                return Err(RejectReason::NotionalOverMax);
            }
        }
        let may_rest = limit && !o.tif.is_immediate();
        if o.post_only {
            if !may_rest {
                return Err(RejectReason::PostOnlyNotResting);
            }
            if book.crosses(o.side, o.price) {
                return Err(RejectReason::PostOnlyWouldTake);
            }
        }
        if may_rest {
            if !self.orders.has_free() {
                return Err(RejectReason::OrderCapacityExhausted);
            }
            let own = book.side(o.side);
            if !own.has_free_level() && own.level_id(o.price).is_none() {
                return Err(RejectReason::LevelCapacityExhausted);
            }
        }
        Ok(())
    }

    /// Validation of a replace against the order's instrument, in the documented precedence.
    pub(super) fn check_replace(
        &self,
        o: &OrderSlot,
        r: &Replace,
        new_price: Price,
    ) -> Result<(), RejectReason> {
        let book = &self.books[o.book as usize];
        if r.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        if r.qty % book.lot != 0 {
            return Err(RejectReason::OffLot);
        }
        if r.qty > book.max_qty {
            return Err(RejectReason::QuantityOverMax);
        }
        if new_price != o.price {
            if new_price <= 0 {
                return Err(RejectReason::InvalidPrice);
            }
            if new_price % book.tick != 0 {
                return Err(RejectReason::OffTick);
            }
            if !book.in_band(new_price) {
                return Err(RejectReason::OutsidePriceBand);
            }
        }
        if (new_price as u128) * (r.qty as u128) > book.max_notional {
            return Err(RejectReason::NotionalOverMax);
        }
        if new_price != o.price {
            if o.post_only && book.crosses(o.side, new_price) {
                return Err(RejectReason::PostOnlyWouldTake);
            }
            let own = book.side(o.side);
            if !own.has_free_level() && own.level_id(new_price).is_none() {
                return Err(RejectReason::LevelCapacityExhausted);
            }
        }
        Ok(())
    }
}
