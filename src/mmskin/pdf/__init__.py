"""PDF stage: pages → captions → figures → panels → records (see ``mmskin.pdf.build``)."""
