"""Token-id conventions shared by every vocabulary and model."""

PAD = 0  #: padding; never predicted, masked out of every loss and attention
BOS = 1  #: beginning of sequence; every target row starts with it
EOS = 2  #: end of sequence; every target row has it before its padding
UNK = 3  #: unknown token
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")  #: their strings, in id order
