"""Domain code shared by web and workers. Importing it has no side effects; it never imports Flask, web or workers."""
