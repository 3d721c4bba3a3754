"""Electronic seals and signatures: keys, certificates, seal images, signed PDFs.

A library the core calls (no Flask, no models); it arrives with the seals capability.
"""
