# Classes are registered in tryton.cfg (Tryton 8.0).
