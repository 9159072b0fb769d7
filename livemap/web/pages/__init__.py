"""The HTML pages: tracking (folium + Leaflet), order lookup, dispatcher dashboard, driver app, unsubscribe."""
