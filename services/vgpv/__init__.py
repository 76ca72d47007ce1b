"""The VGPV register: VG Primärvård's and Vårdval Rehab's monthly visit file (Västra Götaland)."""
