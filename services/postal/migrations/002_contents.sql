-- What a delivery carries, told to the carrier: the result, and the number of the decision
-- when the result is one (số, ký hiệu).
ALTER TABLE shipments ADD COLUMN contents text;
