# This file is part of the course-commerce suite.  Classes are registered in
# tryton.cfg (Tryton 8.0), so this package needs no code.
