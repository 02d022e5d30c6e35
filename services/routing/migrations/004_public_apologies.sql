-- The public list of apologies (seed 004: "công khai xin lỗi"), newest first.
CREATE INDEX timeline_apologies ON timeline (at DESC, seq DESC) WHERE event_type = 'vn.lgsp.dossier.apologised.v1';
