"""Local web sites that simulated shoppers visit. `sites.store` is the WebShop-style store."""
