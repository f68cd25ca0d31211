-- The API key (its id) that may poll a poll stream and acknowledge its
-- events: only the receiver the stream was made for, so that another key
-- holder cannot take (and so delete) its events. Empty for streams made
-- before this column: those admin keys alone may poll.
ALTER TABLE ssf_streams ADD COLUMN poll_key TEXT NOT NULL DEFAULT '';
