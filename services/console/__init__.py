"""Console: web pages for managers, officials and operators, reading the other services' APIs."""
