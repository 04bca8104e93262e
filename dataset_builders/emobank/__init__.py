"""EmoBank (Buechel & Hahn 2017) mapped to affectlab's persona-conditioned regression contract."""
