//! Which stages a target needs, in an order that builds each after what it uses.
